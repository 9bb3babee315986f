"""The Celery app: configured from Django settings (CELERY_*), tasks autodiscovered from apps.

Three queues: `default` (light work), `inference` (the model; GPU workers consume it) and
`webhooks` (callbacks to integrators, on a worker of their own that never loads the model)."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")  # DEBUG off

app = Celery("video_sentiment")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("inference"), Queue("webhooks"))
app.autodiscover_tasks()
# Run with `celery -A config beat` (one per deployment): the reaper rescues lost/stuck jobs.
app.conf.beat_schedule = {
    "reap-stuck-jobs": {"task": "worker.tasks.reap_stuck_jobs", "schedule": 60.0},
}

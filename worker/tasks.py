"""Celery tasks. Thin: each calls one service function."""

import logging
import socket

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from worker.models import WorkerHeartbeat

log = logging.getLogger(__name__)


@shared_task(name="worker.tasks.ping")
def ping(token: str) -> None:
    """Record that a worker is alive and can reach the database (health checks, tests)."""
    WorkerHeartbeat.objects.update_or_create(
        token=token, defaults={"hostname": socket.gethostname()}
    )


@shared_task(
    bind=True,
    name="worker.tasks.analyze_video",
    acks_late=True,  # a message is acknowledged only after the job ends...
    reject_on_worker_lost=True,  # ...and redelivered if the worker process dies mid-job
    soft_time_limit=settings.ANALYSIS_SOFT_TIME_LIMIT_S,
    time_limit=settings.ANALYSIS_TIME_LIMIT_S,
    max_retries=3,
)
def analyze_video(self, job_id: str) -> None:
    from videos.jobs import TRANSIENT_ERRORS, fail_job, run_analysis

    try:
        run_analysis(job_id, task_id=self.request.id or "")
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            log.error("job %s: a service stayed unavailable: %r", job_id, exc)
            fail_job(job_id, "service_unavailable", "A service we depend on stayed unavailable.")
            return
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc


@shared_task(
    bind=True,
    name="worker.tasks.deliver_webhook",
    max_retries=None,  # webhooks.services counts the attempts (WEBHOOK_MAX_ATTEMPTS)
    # Only a backstop: each request has its own whole-request deadline (WEBHOOK_DEADLINE_S).
    soft_time_limit=settings.WEBHOOK_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.WEBHOOK_TASK_TIME_LIMIT_S,
)
def deliver_webhook(self, delivery_id: str) -> None:
    """One attempt at a job's callback; a failed one comes back after the backoff."""
    from webhooks.services import attempt_delivery

    retry_in = attempt_delivery(delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="worker.tasks.reap_stuck_jobs")
def reap_stuck_jobs() -> dict[str, int]:
    from videos.reaper import clean_expired_uploads
    from videos.reaper import reap_stuck_jobs as reap
    from webhooks.services import resend_lost_deliveries

    return {
        **reap(),
        "expired_uploads_removed": clean_expired_uploads(),
        "webhooks_resent": resend_lost_deliveries(),
    }


@worker_process_init.connect
def load_model_once(**_: object) -> None:
    """Load the model in each worker process after fork (CUDA cannot be set up before a fork)."""
    if not settings.WORKER_PRELOAD_MODEL:
        return
    from videos.jobs import get_analyzer

    try:
        get_analyzer()
    except Exception:  # noqa: BLE001 - jobs will fail with the reason; the worker stays up
        log.exception("could not load the analysis model")

"""Celery tasks. Thin: each calls one service function."""

import socket

from celery import shared_task

from worker.models import WorkerHeartbeat


@shared_task(name="worker.tasks.ping")
def ping(token: str) -> None:
    """Record that a worker is alive and can reach the database (health checks, tests)."""
    WorkerHeartbeat.objects.update_or_create(
        token=token, defaults={"hostname": socket.gethostname()}
    )

"""Finds jobs the queue lost track of, and puts them back on track.

The database is the source of truth: a job whose worker died (no heartbeat) or whose message was
lost (a broker restart) is resent, or failed with a reason once it has used its attempts.
Runs from Celery beat (`worker.tasks.reap_stuck_jobs`) or `manage.py reap_stuck_jobs`."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from videos.models import AnalysisJob, DirectUpload, JobStatus
from videos.services import enqueue_analysis
from webhooks.services import notify_job_finished

log = logging.getLogger(__name__)


def reap_stuck_jobs() -> dict[str, int]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ANALYSIS_HEARTBEAT_STALE_S)
    overdue = now - timedelta(seconds=settings.ANALYSIS_TIME_LIMIT_S + 60)
    waiting = now - timedelta(seconds=settings.ANALYSIS_REQUEUE_AFTER_S)
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    running = AnalysisJob.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True) | Q(started_at__lt=overdue)
    )
    for job_id in running.values_list("pk", flat=True):
        with transaction.atomic():
            job = AnalysisJob.objects.select_for_update().get(pk=job_id)
            if job.status != JobStatus.RUNNING:
                continue
            if job.attempts >= settings.ANALYSIS_MAX_ATTEMPTS:
                job.status, job.stage = JobStatus.FAILED, "failed"
                job.error_code = "stuck"
                job.error_message = (
                    f"The analysis stopped responding {job.attempts} times (worker lost or over "
                    "the time limit); giving up."
                )
                job.finished_at = now
                counts["failed"] += 1
            else:
                job.status, job.stage, job.progress = JobStatus.QUEUED, "requeued", 0
                job.task_id = ""
                # For a queued job, heartbeat_at is when it was last sent: not "lost" yet.
                job.heartbeat_at = now
                enqueue_analysis(job)
                counts["requeued"] += 1
            job.save()
            if job.status == JobStatus.FAILED:
                notify_job_finished(job.pk)
    lost = AnalysisJob.objects.filter(status=JobStatus.QUEUED, queued_at__lt=waiting)
    for job in lost.filter(Q(heartbeat_at__lt=waiting) | Q(heartbeat_at__isnull=True)):
        if not _due_for_resend(job, now):
            continue
        # Resending is safe: the first delivery takes the job, a duplicate finds it owned.
        with transaction.atomic():
            AnalysisJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
            enqueue_analysis(job)
        counts["resent"] += 1
    if any(counts.values()):
        log.warning("reaper: %s", counts)
    return counts


def _due_for_resend(job: AnalysisJob, now) -> bool:
    """A queued job is resent once it has waited, since it was last sent, at least as long as it
    had waited before that (and ANALYSIS_REQUEUE_AFTER_S): 15, 15, 30, 60 min... A lost message
    comes back within minutes, while a long backlog is resent a few times, not every pass."""
    last_sent = job.heartbeat_at or job.queued_at
    wait = max(timedelta(seconds=settings.ANALYSIS_REQUEUE_AFTER_S), last_sent - job.queued_at)
    return now - last_sent >= wait


# A used slot's row is kept this long past its expiry (its object is the video: never deleted).
USED_UPLOAD_ROW_KEPT = timedelta(days=1)


def clean_expired_uploads() -> int:
    """Direct-upload slots whose presigned POST has expired: an unused slot goes with its object
    (if the client uploaded one), a used one loses only its row. No claim can start on an
    expired slot (claim_direct_upload checks expires_at), so nothing in use is removed."""
    now = timezone.now()
    expired = DirectUpload.objects.filter(expires_at__lt=now)
    removed = 0
    for upload in expired.filter(consumed_at__isnull=True):
        default_storage.delete(upload.key)
        upload.delete()
        removed += 1
    removed += expired.filter(
        consumed_at__isnull=False, expires_at__lt=now - USED_UPLOAD_ROW_KEPT
    ).delete()[0]
    if removed:
        log.info("reaper: %d expired direct-upload slots removed", removed)
    return removed

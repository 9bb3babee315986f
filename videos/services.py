"""Uploads and analysis jobs: every check and state change, as plain functions.

Views and tasks stay thin and call these."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from mlcore.media import MediaError, MediaLimits, probe
from quotas import services as quotas
from videos.errors import Conflict, ServiceError, UploadRejected
from videos.models import FINISHED_STATUSES, AnalysisJob, DirectUpload, JobStatus, Video
from videos.storage import copy_and_hash, s3_client
from webhooks import services as webhooks

log = logging.getLogger(__name__)


def media_limits(max_duration_s: float | None = None) -> MediaLimits:
    return MediaLimits(
        max_duration_s=min(
            settings.MAX_VIDEO_SECONDS, max_duration_s or settings.MAX_VIDEO_SECONDS
        ),
        max_width=settings.MAX_VIDEO_WIDTH,
        max_height=settings.MAX_VIDEO_HEIGHT,
    )


def upload_limits(owner) -> tuple[int, MediaLimits]:
    """(max bytes, media limits) for this owner: their plan's, never above the global settings."""
    max_bytes, max_seconds = quotas.upload_limits(owner)
    return max_bytes, media_limits(max_seconds)


def check_declared_size(size: int | None, max_bytes: int | None = None) -> None:
    """Refuse early on the size the client declares (Content-Length), before reading the body."""
    limit = max_bytes or settings.MAX_UPLOAD_BYTES
    if size is not None and size > limit + 64 * 1024:  # + multipart overhead
        raise _too_large(limit)


def _too_large(limit: int) -> UploadRejected:
    limit_mb = limit / (1024 * 1024)
    return UploadRejected(
        "file_too_large",
        f"The file is larger than the {limit_mb:g} MB limit.",
        details={"max_bytes": limit},
    )


def display_name(name: str) -> str:
    """The user's file name as given, for display only (escaped on output), never a path:
    slashes become look-alikes, so "<script>alert(1)</script>.mp4" is kept whole."""
    return name.replace("/", "\u2215").replace("\\", "\u2216")


def _clean_name(name: str) -> str:
    return display_name(name or "").strip()[:255] or "video"


def _verify_media(
    path: Path, size: int, max_bytes: int, limits: MediaLimits, shown_name: str
) -> dict:
    """Probe the file at `path` (a temp file); refusals name the user's file, `shown_name`."""
    if size == 0:
        raise UploadRejected("empty_file", "The file is empty.")
    if size > max_bytes:
        raise _too_large(max_bytes)
    try:
        info = probe(path, limits)
    except MediaError as exc:
        raise UploadRejected(exc.code, exc.message.replace(path.name, shown_name)) from exc
    return {
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "has_audio": info.has_audio,
    }


def store_uploaded_video(owner, upload: IO[bytes], original_name: str) -> Video:
    """Check an uploaded file (size, ffprobe, video stream, the owner's limits) and keep it in
    storage."""
    max_bytes, limits = upload_limits(owner)
    with tempfile.NamedTemporaryFile(prefix="upload-") as tmp:
        size, sha256 = copy_and_hash(upload, tmp, max_bytes)
        tmp.flush()
        name = _clean_name(original_name)
        facts = _verify_media(Path(tmp.name), size, max_bytes, limits, name)
        video = Video(owner=owner, original_name=name, size=size, sha256=sha256, **facts)
        tmp.seek(0)
        video.file.save("source", File(tmp), save=False)
    return video


def create_direct_upload(owner, original_name: str) -> tuple[DirectUpload, dict]:
    """A presigned POST target for uploading straight to S3 (S3 storage only)."""
    client = s3_client()
    if client is None:
        raise Conflict(
            "direct_upload_unavailable",
            "Direct uploads need S3 storage; send the file to POST /api/v1/analyses instead.",
        )
    upload = DirectUpload(
        owner=owner,
        original_name=_clean_name(original_name),
        expires_at=timezone.now() + timedelta(seconds=settings.DIRECT_UPLOAD_EXPIRES_S),
    )
    upload.key = f"uploads/{owner.pk}/{upload.id}/source"
    upload.save()
    max_bytes, _ = upload_limits(owner)
    target = client.generate_presigned_post(
        Bucket=default_storage.bucket_name,
        Key=default_storage._normalize_name(upload.key),
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=settings.DIRECT_UPLOAD_EXPIRES_S,
    )
    return upload, target


def claim_direct_upload(owner, upload_id) -> DirectUpload:
    """Mark the slot used in one short UPDATE (no lock held afterwards): a concurrent submit of
    the same id is refused while this one downloads and probes. `release_direct_upload` gives it
    back if the analysis is not created."""
    now = timezone.now()
    pending = DirectUpload.objects.filter(pk=upload_id, owner=owner, consumed_at__isnull=True)
    if not pending.filter(expires_at__gte=now).update(consumed_at=now):
        if pending.exists():
            raise UploadRejected(
                "upload_expired", "This upload slot has expired; request a new one."
            )
        raise UploadRejected("unknown_upload", "No pending upload with this id.")
    return DirectUpload.objects.get(pk=upload_id)


def release_direct_upload(upload: DirectUpload) -> None:
    DirectUpload.objects.filter(pk=upload.pk).update(consumed_at=None)


def video_from_direct_upload(owner, upload: DirectUpload) -> Video:
    """Verify an object the client uploaded to S3 (size, ffprobe) and make it a Video (unsaved).

    Network and FFmpeg work: call it outside any transaction, on a claimed slot."""
    if not default_storage.exists(upload.key):
        raise UploadRejected("upload_missing", "Nothing was uploaded for this id yet.")
    # The presigned policy limits size, but S3-compatible servers may not enforce it: check here.
    max_bytes, limits = upload_limits(owner)
    if default_storage.size(upload.key) > max_bytes:
        default_storage.delete(upload.key)
        raise _too_large(max_bytes)
    with (
        tempfile.NamedTemporaryFile(prefix="upload-") as tmp,
        default_storage.open(upload.key, "rb") as src,
    ):
        size, sha256 = copy_and_hash(src, tmp, max_bytes)
        tmp.flush()
        try:
            facts = _verify_media(Path(tmp.name), size, max_bytes, limits, upload.original_name)
        except UploadRejected:
            default_storage.delete(upload.key)  # refused media is not kept
            raise
    video = Video(
        owner=owner, original_name=upload.original_name, size=size, sha256=sha256, **facts
    )
    video.file.name = upload.key
    return video


def submit_analysis(
    owner,
    *,
    upload: IO[bytes] | None = None,
    name: str = "",
    upload_id=None,
    callback_url: str = "",
    before_queueing: Callable[[], None] | None = None,
):
    """Store/verify the video and queue its analysis; nothing is queued if any check fails.
    `before_queueing` runs after the slow checks, just before the job is created: it may raise
    to refuse (e.g. videos.abandon: the upload's page was left meanwhile).

    `callback_url`: POSTed the signed job summary when the job ends (webhooks app); checked
    here first (http(s), public address). Raises quotas.services.QuotaExceeded (429) when the
    owner's monthly allowance is used up."""
    if (upload is None) == (upload_id is None):
        raise UploadRejected("invalid_request", "Send either a file or an upload_id.")
    callback_url = webhooks.validate_callback_url(callback_url)  # cheap: before the upload work
    # Slow work (reading, copying, ffprobe) first, outside the transaction and its locks.
    direct = None
    if upload is not None:
        video = store_uploaded_video(owner, upload, name)
    else:
        direct = claim_direct_upload(owner, upload_id)
        try:
            video = video_from_direct_upload(owner, direct)
        except Exception:
            release_direct_upload(direct)
            raise
    try:
        if before_queueing is not None:
            before_queueing()
        with transaction.atomic():
            video.save()
            job = AnalysisJob.objects.create(video=video, owner=owner, callback_url=callback_url)
            if callback_url:
                webhooks.get_secret(owner)  # the secret exists before the first callback
            # Locks the owner's quota row until commit; refusing rolls the video and job back.
            quotas.charge_analysis(owner, job, video)
            enqueue_analysis(job)
    except Exception:
        if direct is not None:
            release_direct_upload(direct)  # the object stays: the client may submit it again
        else:
            video.file.delete(save=False)  # nothing lost, nothing orphaned
        raise
    return job


def enqueue_analysis(job: AnalysisJob) -> None:
    job_id = str(job.pk)
    # After commit: the worker must find the row, and a rolled-back job must never run.
    transaction.on_commit(lambda: _send(job_id))


def _send(job_id: str) -> None:
    """Publish a committed job. The database says it is queued (and charged), so a broker that
    refuses the message must not undo the job: it stays queued and the reaper resends it."""
    from worker.tasks import analyze_video

    try:
        analyze_video.delay(job_id)
    except Exception:  # noqa: BLE001 - any publish failure: kombu, redis, socket errors
        log.exception("job %s: the broker refused the message; the reaper will resend it", job_id)


# The cancel policy, as the confirm dialog, the API schema and the README state it.
CANCEL_POLICY = (
    "A canceled analysis is refunded in full, whether it was still waiting or already running: "
    "it delivers no results, so it does not count against your monthly allowance. "
    "You can run it again later."
)


def cancel_job(job: AnalysisJob) -> bool:
    """Cancel a queued/running job and refund it (CANCEL_POLICY); False (and nothing changed) if
    it has already finished. A running worker notices at its next progress report and stops;
    its results are never saved (jobs.save_results wants a running job)."""
    with transaction.atomic():
        locked = AnalysisJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in FINISHED_STATUSES:
            return False
        locked.status = JobStatus.CANCELED
        locked.stage = "canceled"
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "stage", "finished_at"])
        quotas.refund_job(locked.pk, "canceled")
        webhooks.notify_job_finished(locked.pk)
        return True


def delete_job(job: AnalysisJob) -> None:
    """Delete a job, and its video once no other job (a run again) uses it."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=job.video_id)
        AnalysisJob.objects.filter(pk=job.pk).delete()
        if not video.jobs.exists():
            video.delete()


def cancel_or_delete(job: AnalysisJob) -> str:
    """Cancel a queued/running job; delete a finished one (and its video if no other job uses
    it). Returns what happened."""
    if cancel_job(job):
        return "canceled"
    delete_job(job)
    return "deleted"


RERUNNABLE = (JobStatus.FAILED, JobStatus.CANCELED)


def rerun_job(job: AnalysisJob, callback_url: str | None = None) -> AnalysisJob:
    """Run again: a new job for a canceled or failed job's video, charged like a new
    submission (within the owner's quota and current limits). The old job stays as it was.

    `callback_url`: None keeps the old job's (checked again); "" for none. Raises Conflict
    (`not_rerunnable`, `already_rerun`), UploadRejected or QuotaExceeded."""
    callback_url = webhooks.validate_callback_url(
        job.callback_url if callback_url is None else callback_url
    )
    with transaction.atomic():
        # Locked: two clicks on "Run again" make one job, not two.
        old = AnalysisJob.objects.select_for_update().select_related("video").get(pk=job.pk)
        if old.status not in RERUNNABLE:
            raise Conflict(
                "not_rerunnable",
                f"Only failed or canceled analyses can be run again; this one is {old.status}.",
            )
        newer = old.reruns.first()
        if newer is not None:
            raise Conflict(
                "already_rerun",
                "This analysis was already run again.",
                details={"rerun_id": str(newer.pk)},
            )
        video = old.video
        max_bytes, limits = upload_limits(old.owner)
        if video.size > max_bytes:
            raise _too_large(max_bytes)
        if video.duration > limits.max_duration_s:
            raise UploadRejected(
                "too_long",
                f"The video is longer than the {limits.max_duration_s:g} s your plan allows.",
            )
        new = AnalysisJob.objects.create(
            video=video, owner=old.owner, callback_url=callback_url, rerun_of=old
        )
        quotas.charge_analysis(old.owner, new, video)  # refusing rolls the new job back
        if callback_url:
            webhooks.get_secret(old.owner)
        enqueue_analysis(new)
    return new


def retry_job(job: AnalysisJob) -> AnalysisJob:
    """Queue a failed or canceled job again, as the same job (admin action; users "run again",
    rerun_job)."""
    with transaction.atomic():
        locked = AnalysisJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in (JobStatus.FAILED, JobStatus.CANCELED):
            raise Conflict("not_retryable", f"A {locked.status} job cannot be retried.")
        locked.status = JobStatus.QUEUED
        locked.stage = "queued"
        locked.progress = 0
        locked.error_code = locked.error_message = ""
        locked.attempts = 0
        locked.finished_at = None
        locked.task_id = ""
        # Queued (and sent) now: the reaper must not take the old times for a lost message.
        locked.queued_at = locked.heartbeat_at = timezone.now()
        locked.save()
        quotas.recharge_job(locked.pk)  # it was refunded; running again counts again
        enqueue_analysis(locked)
    return locked


SPEAKER_NAME_MAX = 60


def rename_speakers(job: AnalysisJob, names: dict[str, str]) -> dict[str, str]:
    """Store the owner's names for the job's speakers ({"1": "Ann"}; an empty name restores
    "Speaker N"), returning all names now given. Only a succeeded job has speakers."""
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict("no_results", "This analysis has no results (yet): no speakers to name.")
    known = {str(s["id"]) for s in job.speakers or []}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ServiceError(
            "unknown_speaker",
            f"No speaker {', '.join(unknown)} in this analysis "
            f"(it has {', '.join(sorted(known, key=int)) or 'none'}).",
            details={"unknown": unknown},
        )
    stored = dict(job.speaker_names or {})
    for speaker, given in names.items():
        name = " ".join(given.split())  # one line: names appear in subtitles and CSV cells
        if len(name) > SPEAKER_NAME_MAX:
            raise ServiceError(
                "name_too_long", f"A speaker name has at most {SPEAKER_NAME_MAX} characters."
            )
        if name:
            stored[speaker] = name
        else:
            stored.pop(speaker, None)
    job.speaker_names = stored
    job.save(update_fields=["speaker_names"])
    return stored

"""Running an analysis job: the one service function the Celery task calls.

Idempotent: a finished job is left alone, and results are replaced in one transaction, so a
redelivered message never duplicates utterances."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from mlcore.inference import AnalysisResult, Analyzer, overall_progress
from mlcore.media import MediaError
from quotas import services as quotas
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.services import media_limits
from videos.storage import local_copy
from webhooks.services import notify_job_finished

log = logging.getLogger(__name__)

# Failures worth another attempt: the service, not the video, was at fault.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)
try:
    from botocore.exceptions import ConnectionError as BotoConnectionError

    TRANSIENT_ERRORS += (BotoConnectionError,)
except ImportError:  # pragma: no cover - boto3 is a base requirement
    pass


class JobCanceled(Exception):
    """The job was canceled or deleted while it ran."""


@lru_cache(maxsize=1)
def get_analyzer() -> Analyzer:
    """One analyzer (model, tokenizer, Whisper) per worker process, loaded on first use."""
    return Analyzer(
        checkpoint=settings.MODEL_CHECKPOINT or None,
        whisper_model=settings.WHISPER_MODEL or None,
        language_model=settings.WHISPER_LANGUAGE_MODEL or None,
        translate_speech=settings.ANALYSIS_TRANSLATE,
        whisper_device=settings.WHISPER_DEVICE,
        allow_untrained=getattr(settings, "ANALYSIS_ALLOW_UNTRAINED", False),
        limits=media_limits(),  # the same MAX_VIDEO_* settings as the upload check
        face=settings.ANALYSIS_FACE_CHANNEL,
        face_model=settings.ANALYSIS_FACE_MODEL,
        voice=settings.ANALYSIS_VOICE_CHANNEL,
        voice_emotion=settings.ANALYSIS_VOICE_EMOTION,
        speakers=settings.ANALYSIS_SPEAKERS,
        face_weight=settings.FUSION_FACE_WEIGHT,
        text_weight=settings.FUSION_TEXT_WEIGHT,
        voice_weight=settings.FUSION_VOICE_WEIGHT,
    )


def _owned_elsewhere(job: AnalysisJob, task_id: str) -> bool:
    """True while another live message runs this job (a duplicate delivery must not run it too)."""
    if job.status != JobStatus.RUNNING or not job.task_id or job.task_id == task_id:
        return False  # queued, or a redelivery of the owning message after its worker died
    stale_after = timedelta(seconds=settings.ANALYSIS_HEARTBEAT_STALE_S)
    return job.heartbeat_at is not None and timezone.now() - job.heartbeat_at < stale_after


def _start(job_id: str, task_id: str) -> AnalysisJob | None:
    with transaction.atomic():
        job = (
            AnalysisJob.objects.select_for_update()
            .select_related("video")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.is_finished or _owned_elsewhere(job, task_id):
            return None  # deleted, canceled, done, or running elsewhere: nothing to do
        if job.attempts >= settings.ANALYSIS_MAX_ATTEMPTS:
            _fail(
                job, "too_many_attempts", f"The analysis stopped {job.attempts} times; giving up."
            )
            return None
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.stage, job.progress = "starting", 0
        job.started_at = job.heartbeat_at = now
        job.task_id = task_id
        job.save(
            update_fields=[
                "status",
                "attempts",
                "stage",
                "progress",
                "started_at",
                "heartbeat_at",
                "task_id",
            ]
        )
    return job


def _fail(job: AnalysisJob, code: str, message: str) -> None:
    updated = AnalysisJob.objects.filter(
        pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    )
    if updated.update(
        status=JobStatus.FAILED,
        stage="failed",
        error_code=code,
        error_message=message,
        finished_at=timezone.now(),
    ):
        quotas.refund_job(job.pk, code)  # policy: a failed analysis is not charged
        notify_job_finished(job.pk)


def fail_job(job_id: str, code: str, message: str) -> None:
    job = AnalysisJob.objects.filter(pk=job_id).first()
    if job is not None:
        _fail(job, code, message)


class ProgressReporter:
    """Writes stage/progress to the job row (at most every `interval_s`), and notices a cancel
    or a takeover (another message, `task_id`, now owns the run)."""

    def __init__(self, job_id: str, task_id: str = "", interval_s: float = 0.5) -> None:
        self.job_id = job_id
        self.task_id = task_id
        self.interval_s = interval_s
        self._last_write = 0.0
        self._last_stage = ""

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self._last_stage and now - self._last_write < self.interval_s:
            return
        # 100 only once the results are saved.
        progress = min(int(100 * overall_progress(stage, fraction)), 99)
        running = AnalysisJob.objects.filter(
            pk=self.job_id, status=JobStatus.RUNNING, task_id=self.task_id
        )
        if not running.update(stage=stage, progress=progress, heartbeat_at=timezone.now()):
            raise JobCanceled(self.job_id)
        self._last_write, self._last_stage = now, stage


def save_results(job_id: str, result: AnalysisResult, task_id: str = "") -> bool:
    """Replace the job's utterances and summary in one transaction. False if the job was
    canceled meanwhile, or taken over by another message (its results win)."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.RUNNING or job.task_id != task_id:
            return False
        job.utterances.all().delete()
        Utterance.objects.bulk_create(
            Utterance(
                job=job,
                index=u.index,
                start=u.start,
                end=u.end,
                text=u.text,
                original_text=u.original_text,
                translated=u.translated,
                language=u.language,
                language_probability=u.language_probability,
                emotion=u.emotion or "",
                emotion_scores=u.emotion_scores,
                sentiment=u.sentiment or "",
                sentiment_scores=u.sentiment_scores,
                face=u.face,
                voice=u.voice,
                combined=u.combined,
                speaker=u.speaker,
            )
            for u in result.utterances
        )
        job.status = JobStatus.SUCCEEDED
        job.stage, job.progress = "done", 100
        job.summary = result.summary
        job.warnings = list(result.warnings)
        job.model_version = result.model_version
        job.channels = result.channels
        job.face_track = result.face_track
        job.speakers = result.speakers
        job.speaker_turns = result.speaker_turns
        job.language = result.language
        job.language_probability = result.language_probability
        job.stage_timings = {k: round(v, 3) for k, v in result.timings.items()}
        job.finished_at = timezone.now()
        job.error_code = job.error_message = ""
        job.save()
        quotas.settle_charge(job.pk, result.duration)  # the decoded length, not the header's
        notify_job_finished(job.pk)  # sent once this transaction commits
    return True


def run_analysis(job_id: str, task_id: str = "") -> None:
    """Analyse one job's video and store the results. Transient errors propagate (the task
    retries them); everything else ends the job as failed with its reason. `task_id` is the
    Celery message id (empty when called directly)."""
    job = _start(job_id, task_id)
    if job is None:
        return
    try:
        with local_copy(job.video.file.name) as path:
            result = get_analyzer().analyze(path, progress=ProgressReporter(job_id, task_id))
    except JobCanceled:
        log.info("job %s canceled or taken over while running", job_id)
        return
    except MediaError as exc:
        # MediaError messages start with the file's name: ours is an id, tell the user's.
        stored, message = Path(job.video.file.name).name, exc.message
        if message.startswith(stored):
            message = job.video.original_name + message.removeprefix(stored)
        _fail(job, exc.code, message)
        return
    except SoftTimeLimitExceeded:
        _fail(job, "timeout", "The analysis took longer than the time limit.")
        return
    except TRANSIENT_ERRORS:
        raise
    except Exception:  # noqa: BLE001 - any other failure ends the job; the reason is logged
        log.exception("job %s failed", job_id)
        _fail(job, "internal_error", "The analysis failed because of an error on our side.")
        return
    save_results(job_id, result, task_id)

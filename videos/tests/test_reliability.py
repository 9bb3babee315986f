"""Job ownership across redeliveries and duplicates, and the reaper (real PostgreSQL + Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from quotas.models import UsageRecord
from videos.jobs import JobCanceled, ProgressReporter, get_analyzer, run_analysis
from videos.models import AnalysisJob, JobStatus
from videos.reaper import reap_stuck_jobs
from videos.services import retry_job
from videos.testing import make_stored_video

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _job(owner, **fields) -> AnalysisJob:
    video = make_stored_video(owner)  # not media: a run fails at probe, cheaply
    return AnalysisJob.objects.create(video=video, owner=owner, **fields)


@pytest.mark.django_db(transaction=True)
def test_duplicate_message_leaves_a_live_run_alone(postgres, user, media_root):
    job = _job(
        user, status=JobStatus.RUNNING, task_id="owner", attempts=1, heartbeat_at=timezone.now()
    )
    run_analysis(str(job.pk), task_id="duplicate")
    job.refresh_from_db()
    assert (job.status, job.attempts, job.task_id) == (JobStatus.RUNNING, 1, "owner")


@pytest.mark.django_db(transaction=True)
def test_redelivery_of_the_owning_message_takes_over(postgres, user, media_root):
    job = _job(
        user, status=JobStatus.RUNNING, task_id="owner", attempts=1, heartbeat_at=timezone.now()
    )
    run_analysis(str(job.pk), task_id="owner")  # the worker died; the broker redelivered
    job.refresh_from_db()
    assert job.attempts == 2
    assert job.status == JobStatus.FAILED and job.error_code == "not_media"
    assert job.error_message.startswith("clip.mp4 ")  # the user's name, not our stored one


@pytest.mark.django_db(transaction=True)
def test_a_misconfigured_worker_fails_the_job_with_the_reason(
    postgres, user, media_root, settings, caplog
):
    settings.WHISPER_DEVICE = "tpu"  # the setting reaches the model loader
    get_analyzer.cache_clear()
    try:
        job = _job(user)
        run_analysis(str(job.pk), task_id="t")
    finally:
        get_analyzer.cache_clear()
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "internal_error")
    # The reason is in the log for operators; the user gets no internals.
    assert "unknown Whisper device 'tpu'" in caplog.text
    assert "tpu" not in job.error_message and job.error_message


@pytest.mark.django_db(transaction=True)
def test_attempts_are_capped(postgres, user, media_root, settings):
    job = _job(user, attempts=settings.ANALYSIS_MAX_ATTEMPTS)
    run_analysis(str(job.pk), task_id="again")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error_code == "too_many_attempts"


@pytest.mark.django_db(transaction=True)
def test_reaper_requeues_fails_and_resends(postgres, user, media_root, inference_queue, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.ANALYSIS_TIME_LIMIT_S + 3600)
    stuck = _job(
        user,
        status=JobStatus.RUNNING,
        task_id="dead",
        attempts=1,
        heartbeat_at=long_ago,
        started_at=long_ago,
    )
    hopeless = _job(
        user,
        status=JobStatus.RUNNING,
        task_id="dead2",
        attempts=settings.ANALYSIS_MAX_ATTEMPTS,
        heartbeat_at=long_ago,
    )
    lively = _job(
        user,
        status=JobStatus.RUNNING,
        task_id="alive",
        attempts=1,
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )
    lost = _job(user)
    AnalysisJob.objects.filter(pk=lost.pk).update(queued_at=long_ago)

    assert reap_stuck_jobs() == {"requeued": 1, "failed": 1, "resent": 1}
    states = {j.pk: j for j in AnalysisJob.objects.all()}
    assert states[stuck.pk].status == JobStatus.QUEUED and states[stuck.pk].task_id == ""
    assert states[hopeless.pk].status == JobStatus.FAILED
    assert states[hopeless.pk].error_code == "stuck" and states[hopeless.pk].error_message
    assert states[lively.pk].status == JobStatus.RUNNING
    queued = sorted(m["args"][0] for m in inference_queue())
    assert queued == sorted([str(stuck.pk), str(lost.pk)])

    # The requeued job runs to an end on its next delivery.
    run_analysis(str(stuck.pk), task_id="fresh")
    stuck.refresh_from_db()
    assert stuck.status == JobStatus.FAILED and stuck.attempts == 2
    # A second pass finds nothing new to do right away.
    assert reap_stuck_jobs() == {"requeued": 0, "failed": 0, "resent": 0}


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_enqueue_keeps_the_committed_job(
    postgres, api, media_root, talking_clip, app_on_broker, redis_broker_url, inference_queue
):
    """The job is committed and charged before its message is sent: a broker that refuses the
    message must not cost the job its file or the client its 202; the reaper sends it later."""
    app_on_broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with talking_clip.open("rb") as fh:
        response = api.post(reverse("api-analyses"), {"file": fh}, format="multipart")
    assert response.status_code == 202, response.content
    job = AnalysisJob.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.QUEUED
    assert (media_root / job.video.file.name).read_bytes() == talking_clip.read_bytes()
    assert UsageRecord.objects.get(job=job).refunded_at is None  # charged, as the 202 says

    app_on_broker(redis_broker_url)  # the broker is back; the reaper's pass resends the job
    AnalysisJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    assert reap_stuck_jobs()["resent"] == 1
    assert [m["args"] for m in inference_queue()] == [[str(job.pk)]]


@pytest.mark.django_db(transaction=True)
def test_a_requeued_job_is_sent_once_per_reaper_pass(postgres, user, media_root, inference_queue):
    """A stuck run queued long ago is requeued (one message), not also resent as "lost"."""
    long_ago = timezone.now() - timedelta(hours=3)
    stuck = _job(user, status=JobStatus.RUNNING, task_id="dead", attempts=1, heartbeat_at=long_ago)
    AnalysisJob.objects.filter(pk=stuck.pk).update(queued_at=long_ago, started_at=long_ago)
    assert reap_stuck_jobs() == {"requeued": 1, "failed": 0, "resent": 0}
    assert [m["args"] for m in inference_queue()] == [[str(stuck.pk)]]
    assert reap_stuck_jobs() == {"requeued": 0, "failed": 0, "resent": 0}


@pytest.mark.django_db(transaction=True)
def test_a_long_backlog_is_resent_with_growing_intervals(
    postgres, user, media_root, inference_queue, settings
):
    """A job that waits in a long queue is not resent every pass: each resend waits as long as
    the job had already waited."""
    settings.ANALYSIS_REQUEUE_AFTER_S = 900
    now = timezone.now()
    job = _job(user, status=JobStatus.QUEUED)

    def sent(queued_min_ago: float, last_sent_min_ago: float | None) -> int:
        last = None if last_sent_min_ago is None else now - timedelta(minutes=last_sent_min_ago)
        AnalysisJob.objects.filter(pk=job.pk).update(
            queued_at=now - timedelta(minutes=queued_min_ago), heartbeat_at=last
        )
        return reap_stuck_jobs()["resent"]

    assert sent(16, None) == 1  # lost after 15 min: resent
    assert sent(100, 20) == 0  # waited 80 min before the last send: not again after 20
    assert sent(100, 50) == 1  # 50 min >= the 50 min it had waited before
    assert sent(20, 10) == 0  # never sooner than ANALYSIS_REQUEUE_AFTER_S
    assert len(inference_queue()) == 2


@pytest.mark.django_db(transaction=True)
def test_a_retried_job_is_not_resent_by_the_next_reaper_pass(
    postgres, user, media_root, inference_queue
):
    long_ago = timezone.now() - timedelta(days=2)
    job = _job(user, status=JobStatus.FAILED, error_code="not_media", task_id="old", attempts=1)
    AnalysisJob.objects.filter(pk=job.pk).update(queued_at=long_ago, heartbeat_at=long_ago)
    retry_job(job)
    assert reap_stuck_jobs()["resent"] == 0
    assert [m["args"] for m in inference_queue()] == [[str(job.pk)]]  # the retry's own message
    job.refresh_from_db()
    assert (job.status, job.task_id, job.attempts) == (JobStatus.QUEUED, "", 0)


@pytest.mark.django_db(transaction=True)
def test_a_run_that_was_taken_over_stops_writing_progress(postgres, user, media_root):
    job = _job(user, status=JobStatus.RUNNING, task_id="new-owner", attempts=2, progress=10)
    report = ProgressReporter(str(job.pk), task_id="old-owner")
    with pytest.raises(JobCanceled):
        report("transcribe", 0.5)
    job.refresh_from_db()
    assert (job.stage, job.progress) == ("queued", 10)
    ProgressReporter(str(job.pk), task_id="new-owner")("transcribe", 0.5)  # the owner still can
    job.refresh_from_db()
    assert job.stage == "transcribe" and job.progress > 10

"""Real worker processes killed with SIGKILL mid-job, and a broker that crashes and comes back
empty: nothing lost, nothing duplicated.

Workers are separate `celery worker` processes (prefork pool) on the test PostgreSQL database.
Killing a pool process makes Celery reject the unacknowledged message (acks_late +
reject_on_worker_lost) so it is redelivered to whichever worker is free. Messages lost with the
broker are resent by the reaper, because the database, not the queue, says what is unfinished."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from django.db.models import Count

from accounts.models import User
from mlcore import testmedia
from quotas.services import grant_extra_analyses
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.reaper import reap_stuck_jobs
from videos.services import submit_analysis

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _pool_children(worker: subprocess.Popen) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


def _pids_running_analyses() -> set[int]:
    """The pool processes running a task right now, as the workers themselves report them
    (Celery's remote `inspect active`): a pool process picked at random may be idle, or still
    loading the model after a respawn, and killing it loses no job."""
    from config.celery import app

    active = app.control.inspect(timeout=1.0).active() or {}
    return {task["worker_pid"] for tasks in active.values() for task in tasks}


def _submit(user: User, clip, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        with clip.open("rb") as fh:
            ids.append(str(submit_analysis(user, upload=fh, name="short.mp4").pk))
    return ids


def _wait_all(ids: list[str], timeout_s: float, during: Callable[[], object]) -> list[AnalysisJob]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        during()
        jobs = list(AnalysisJob.objects.filter(pk__in=ids))
        if all(j.is_finished for j in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(dict(AnalysisJob.objects.values_list("status").annotate(Count("pk"))))


def _assert_each_succeeded_once(ids: list[str], jobs: list[AnalysisJob]) -> None:
    assert {j.status for j in jobs} == {JobStatus.SUCCEEDED}, {
        str(j.pk): (j.status, j.error_message) for j in jobs
    }
    per_job = dict(
        Utterance.objects.filter(job_id__in=ids)
        .values_list("job_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    expected = Utterance.objects.filter(job_id=ids[0]).count()
    assert expected >= 1
    assert {str(k) for k in per_job} == set(ids) and set(per_job.values()) == {expected}


@pytest.fixture
def clip(tmp_path):
    return testmedia.make_talking_clip(tmp_path / "short.mp4", ["Oh no, not again."])


@pytest.mark.django_db(transaction=True)
def test_fifty_jobs_with_five_sigkills(
    postgres, redis_broker_url, settings, tmp_path, clip, start_worker_process
):
    settings.MEDIA_ROOT = tmp_path / "media"
    user = User.objects.create_user("load@example.com", "pw-Load-12345")
    grant_extra_analyses(user, 50)
    workers = [start_worker_process(f"w{i}", redis_broker_url) for i in range(2)]
    ids = _submit(user, clip, 50)
    rng = random.Random(7)
    kills: list[int] = []

    def kill_a_busy_pool_process() -> None:
        if len(kills) >= 5:
            return
        if not AnalysisJob.objects.filter(status=JobStatus.RUNNING, progress__gt=0).exists():
            return
        children = sorted(
            {pid for w in workers for pid in _pool_children(w)}
            & _pids_running_analyses() - set(kills)
        )
        if children:
            victim = rng.choice(children)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                return  # it exited between the listing and the kill: pick again
            kills.append(victim)
            time.sleep(rng.uniform(2, 6))  # let the pool respawn between kills

    jobs = _wait_all(ids, timeout_s=900, during=kill_a_busy_pool_process)
    assert len(kills) == 5
    assert all(w.poll() is None for w in workers), "a worker main process died"
    _assert_each_succeeded_once(ids, jobs)
    # Killed jobs were redelivered: more attempts than jobs (55 when every kill lands mid-job).
    assert sum(j.attempts for j in jobs) > 50


@pytest.mark.django_db(transaction=True)
def test_broker_crash_and_restart_loses_no_job(
    postgres, settings, tmp_path, clip, start_worker_process, private_redis, app_on_broker
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Resend a queued job after 5 s without news (production: 15 min) so the test is short.
    settings.ANALYSIS_REQUEUE_AFTER_S = 5
    app_on_broker(private_redis.url)
    user = User.objects.create_user("crash@example.com", "pw-Crash-12345")
    grant_extra_analyses(user, 10)
    worker = start_worker_process("survivor", private_redis.url)
    ids = _submit(user, clip, 10)

    def some_done() -> bool:
        return AnalysisJob.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).count() >= 2

    deadline = time.monotonic() + 300
    while not some_done():
        assert time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.3)
    queued_before = AnalysisJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED).count()
    assert queued_before >= 3  # their messages are about to be lost

    private_redis.crash()  # every queued message is gone with it
    time.sleep(3)
    private_redis.start()  # empty, as a restarted Redis that keeps nothing on disk

    # Reaping while waiting: what Celery beat does every minute in production.
    jobs = _wait_all(ids, timeout_s=600, during=reap_stuck_jobs)
    assert worker.poll() is None, "the worker died with the broker"
    _assert_each_succeeded_once(ids, jobs)

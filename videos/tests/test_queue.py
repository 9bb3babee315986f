"""A queued analysis says where it stands and about how long it will take, from the measured
rate of recent analyses, in the API and on its page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from videos.models import AnalysisJob, JobStatus
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db


def _job(owner, status, *, seconds: float = 60.0, ago_s: float = 0.0, **fields) -> AnalysisJob:
    video = make_stored_video(owner, duration=seconds)
    job = AnalysisJob.objects.create(video=video, owner=owner, status=status, **fields)
    AnalysisJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - timedelta(seconds=ago_s)
    )
    job.refresh_from_db()
    return job


def test_a_queued_job_knows_its_place_and_an_estimate_from_recent_analyses(
    api, client, user, other_user, media_root
):
    # Recent analyses ran at 0.2 s per video second.
    for _ in range(3):
        _job(other_user, JobStatus.SUCCEEDED, seconds=100.0, ago_s=900,
             stage_timings={"total": 20.0}, finished_at=timezone.now())  # fmt: skip
    _job(other_user, JobStatus.RUNNING, seconds=100.0, ago_s=600, progress=50)
    _job(other_user, JobStatus.QUEUED, seconds=200.0, ago_s=300)  # another user's, earlier
    mine = _job(user, JobStatus.QUEUED, seconds=60.0, ago_s=10)
    _job(other_user, JobStatus.QUEUED, seconds=500.0, ago_s=1)  # later: not ahead

    body = api.get(reverse("api-analysis", args=[mine.pk])).json()
    # Ahead: 200 s queued + half of 100 s running, then its own 60 s: 310 s x 0.2 on 1 worker.
    assert body["queue"] == {"position": 2, "running": 1, "estimate_s": 62}
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[mine.pk])).content.decode()
    assert "Position 2 in the queue (1 running now) · about 1:02 until done" in page


def test_a_running_or_finished_job_has_no_queue_place(api, user, media_root):
    running = _job(user, JobStatus.RUNNING, progress=10)
    assert api.get(reverse("api-analysis", args=[running.pk])).json()["queue"] is None

"""Helpers the quotas tests share: submitting the real clip, making jobs without media."""

from __future__ import annotations

from pathlib import Path

from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from quotas import services
from videos.models import AnalysisJob, JobStatus, Video
from videos.services import submit_analysis


def post_clip(client: APIClient, path: Path):
    with path.open("rb") as fh:
        return client.post(reverse("api-analyses"), {"file": fh}, format="multipart")


def submit(user: User, path: Path):
    """Through the real service, as the API and the web form do."""
    with path.open("rb") as fh:
        return submit_analysis(user, upload=fh, name=path.name)


def charged_job(
    user: User, *, duration: float = 3.0, status: str = JobStatus.QUEUED
) -> AnalysisJob:
    """A job charged like a submission, without storing media (for admin and ledger tests)."""
    video = Video.objects.create(
        owner=user,
        file=f"videos/{user.pk}/x/source",
        original_name="talk.mp4",
        size=1000,
        sha256="0" * 64,
        duration=duration,
        width=320,
        height=240,
        has_audio=True,
    )
    job = AnalysisJob.objects.create(video=video, owner=user, status=status)
    services.charge_analysis(user, job, video)
    return job

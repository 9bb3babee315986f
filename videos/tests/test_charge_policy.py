"""One charging rule, stated where the user decides (upload), on results and in the API docs,
and kept: a finished analysis counts (no speech found too, deleted later too); failed and
canceled ones are refunded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from quotas import services as quotas
from videos import services
from videos.models import AnalysisJob, JobStatus
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db


def test_the_rule_is_stated_at_upload_on_the_dashboard_and_in_the_api_docs(client, user):
    client.force_login(user)
    for name in ("upload", "dashboard"):
        assert quotas.CHARGE_POLICY in client.get(reverse(name)).content.decode()
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").content.decode()
    assert "also when it found no speech" in schema


def _charged_job(user, status=JobStatus.RUNNING) -> AnalysisJob:
    video = make_stored_video(user, duration=60.0)
    job = AnalysisJob.objects.create(video=video, owner=user, status=status)
    quotas.charge_analysis(user, job, video)
    return job


def test_a_finished_analysis_without_speech_counts_and_still_counts_once_deleted(
    client, user, media_root
):
    job = _charged_job(user, status=JobStatus.SUCCEEDED)
    job.summary = {"speech_detected": False, "message": "No speech detected."}
    job.save()
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'id="no-speech"' in page and quotas.CHARGE_POLICY in page
    assert quotas.usage_summary(user).used.analyses == 1
    services.cancel_or_delete(job)
    assert not AnalysisJob.objects.filter(pk=job.pk).exists()
    assert quotas.usage_summary(user).used.analyses == 1


def test_failed_and_canceled_analyses_are_refunded(user, media_root):
    failed, canceled = _charged_job(user), _charged_job(user)
    assert quotas.usage_summary(user).used.analyses == 2
    quotas.refund_job(failed.pk, "failed")
    services.cancel_job(canceled)
    assert quotas.usage_summary(user).used.analyses == 0

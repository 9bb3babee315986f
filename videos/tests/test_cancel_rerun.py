"""The cancel policy (a canceled analysis is refunded, queued or running) and "run again" (a new
analysis of the same video, charged within the quota): services, API and page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from quotas import services as quotas
from quotas.models import Plan, UsageRecord
from videos import services
from videos.errors import Conflict, UploadRejected
from videos.models import AnalysisJob, JobStatus, Video
from videos.testing import make_stored_video

pytestmark = pytest.mark.django_db


def _charged(owner, status=JobStatus.QUEUED, duration=300.0, **fields) -> AnalysisJob:
    video = make_stored_video(owner, original_name="talk.mp4", duration=duration)
    job = AnalysisJob.objects.create(video=video, owner=owner, status=status, **fields)
    quotas.charge_analysis(owner, job, video)
    return job


def _plan(user, **limits) -> None:
    values = {
        "monthly_analyses": 10,
        "monthly_video_seconds": 3600,
        "max_file_bytes": 10**9,
        "max_duration_s": 1800,
        "requests_per_minute": 1000,
    }
    quotas.change_plan(user, Plan.objects.create(name="Test", **(values | limits)))


# --- Cancel: refunded whatever the stage ---


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_api_cancel_refunds_the_analysis_and_its_minutes(api, user, media_root, status):
    job = _charged(user, status=status, stage="transcribe", progress=4)
    usage = api.get(reverse("api-usage")).json()
    assert usage["used"] == {"analyses": 1, "video_seconds": 300.0}
    assert api.delete(reverse("api-analysis", args=[job.pk])).status_code == 204
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED and job.finished_at is not None
    assert api.get(reverse("api-usage")).json()["used"] == {"analyses": 0, "video_seconds": 0.0}
    assert UsageRecord.objects.get(job=job).refund_reason == "canceled"


def test_a_canceled_job_never_saves_results(user, media_root):
    """The worker's results for a job canceled while it ran are dropped (nothing delivered)."""
    from mlcore.inference import AnalysisResult
    from videos.jobs import save_results

    job = _charged(user, status=JobStatus.RUNNING, task_id="t1")
    services.cancel_job(job)
    result = AnalysisResult([], {"speech_detected": False}, "m", ["text"], True, 300.0)
    assert not save_results(str(job.pk), result, task_id="t1")
    assert AnalysisJob.objects.get(pk=job.pk).status == JobStatus.CANCELED


# --- Run again: the service ---


def test_rerun_makes_a_new_charged_job_for_the_same_video(user, media_root):
    old = _charged(user, callback_url="https://93.184.215.14/hook")
    services.cancel_job(old)
    new = services.rerun_job(old)
    assert new.pk != old.pk and new.video_id == old.video_id and new.rerun_of_id == old.pk
    assert new.status == JobStatus.QUEUED and new.callback_url == "https://93.184.215.14/hook"
    assert quotas.usage_summary(user).used == quotas.Usage(1, 300.0)  # the new one counts
    old.refresh_from_db()
    assert old.status == JobStatus.CANCELED  # left as it was
    with pytest.raises(Conflict) as again:
        services.rerun_job(old)
    assert again.value.code == "already_rerun" and again.value.details == {"rerun_id": str(new.pk)}
    with pytest.raises(Conflict) as queued:
        services.rerun_job(new)
    assert queued.value.code == "not_rerunnable"
    services.cancel_job(new)
    assert services.rerun_job(new).rerun_of_id == new.pk  # a run again can be run again


def test_a_failed_job_can_be_run_again(user, media_root):
    from videos.jobs import fail_job

    old = _charged(user)
    fail_job(str(old.pk), "service_unavailable", "A service stayed unavailable.")
    assert services.rerun_job(old).status == JobStatus.QUEUED


def test_a_succeeded_job_cannot(user, media_root):
    old = _charged(user, status=JobStatus.SUCCEEDED)
    with pytest.raises(Conflict) as refused:
        services.rerun_job(old)
    assert refused.value.code == "not_rerunnable"


def test_rerun_refused_over_the_monthly_analyses(user, media_root):
    _plan(user, monthly_analyses=1)
    old = _charged(user)
    services.cancel_job(old)  # refunded: the allowance is free again...
    _charged(user, duration=10.0)  # ...and used by another video
    with pytest.raises(quotas.QuotaExceeded) as refused:
        services.rerun_job(old)
    assert refused.value.details["exceeded"] == "analyses"
    assert not AnalysisJob.objects.filter(rerun_of=old).exists()  # rolled back


def test_rerun_refused_over_the_monthly_minutes(user, media_root):
    _plan(user, monthly_analyses=5, monthly_video_seconds=350)
    old = _charged(user)
    services.cancel_job(old)
    _charged(user, duration=100.0)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        services.rerun_job(old)
    assert refused.value.details["exceeded"] == "video_seconds"
    assert not AnalysisJob.objects.filter(rerun_of=old).exists()  # rolled back


def test_rerun_checks_the_plans_current_duration_limit(user, media_root):
    old = _charged(user)
    services.cancel_job(old)
    _plan(user, max_duration_s=60)
    with pytest.raises(UploadRejected) as refused:
        services.rerun_job(old)
    assert refused.value.code == "too_long"


def test_deleting_a_job_keeps_the_video_another_job_uses(user, media_root):
    old = _charged(user)
    services.cancel_job(old)
    new = services.rerun_job(old)
    assert services.cancel_or_delete(old) == "deleted"
    assert Video.objects.filter(pk=new.video_id).exists()
    assert AnalysisJob.objects.filter(pk=new.pk).exists()
    services.cancel_job(new)
    assert services.cancel_or_delete(new) == "deleted"
    assert not Video.objects.exists()


@pytest.mark.redis
def test_rerun_is_queued_after_commit(
    user, media_root, inference_queue, django_capture_on_commit_callbacks
):
    old = _charged(user)
    services.cancel_job(old)
    with django_capture_on_commit_callbacks(execute=True):
        new = services.rerun_job(old)
    assert [m["args"] for m in inference_queue()] == [[str(new.pk)]]


# --- Run again: the API ---


def test_api_rerun(api, user, other_user, media_root, settings):
    old = _charged(user, callback_url="https://93.184.215.14/hook")
    url = reverse("api-analysis-rerun", args=[old.pk])
    busy = api.post(url)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "not_rerunnable"
    api.delete(reverse("api-analysis", args=[old.pk]))

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    forbidden = api.post(url, {"callback_url": "http://10.0.0.1/hook"}, format="json")
    assert forbidden.status_code == 400
    assert forbidden.json()["error"]["code"] == "callback_url_forbidden"

    created = api.post(url, {"callback_url": ""}, format="json")
    assert created.status_code == 202, created.content
    body = created.json()
    assert created["Location"] == body["url"] and body["status"] == "queued"
    assert body["rerun_of"] == str(old.pk) and body["callback_url"] == ""
    assert body["video"]["id"] == str(old.video_id)
    again = api.post(url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_rerun"
    assert again.json()["error"]["details"] == {"rerun_id": body["id"]}

    api.force_authenticate(other_user)
    assert api.post(url).status_code == 404


def test_api_rerun_over_quota_is_429(api, user, media_root):
    _plan(user, monthly_analyses=1)
    old = _charged(user)
    api.delete(reverse("api-analysis", args=[old.pk]))
    _charged(user, duration=10.0)
    refused = api.post(reverse("api-analysis-rerun", args=[old.pk]))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"


# --- The page ---


def test_page_cancel_states_the_policy_and_runs_again(client, user, media_root):
    client.force_login(user)
    job = _charged(user, status=JobStatus.RUNNING)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert f"Stop this analysis? {services.CANCEL_POLICY}" in page
    assert 'id="rerun-form"' not in page

    canceled = client.post(reverse("job-delete", args=[job.pk]), follow=True)
    html = canceled.content.decode()
    assert "does not count against your allowance" in html and 'id="rerun-form"' in html
    assert quotas.usage_summary(user).used.analyses == 0

    rerun = client.post(reverse("job-rerun", args=[job.pk]))
    new = AnalysisJob.objects.get(rerun_of=job)
    assert rerun.status_code == 302 and rerun["Location"] == reverse("job-detail", args=[new.pk])
    # A second click (or a reload of the POST) lands on the same run, making no other.
    twice = client.post(reverse("job-rerun", args=[job.pk]))
    assert twice["Location"] == reverse("job-detail", args=[new.pk])
    assert AnalysisJob.objects.filter(rerun_of=job).count() == 1
    old_page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'id="rerun-link"' in old_page and reverse("job-detail", args=[new.pk]) in old_page


def test_page_rerun_refused_shows_why(client, user, media_root):
    _plan(user, monthly_analyses=1)
    client.force_login(user)
    job = _charged(user)
    services.cancel_job(job)
    _charged(user, duration=10.0)
    response = client.post(reverse("job-rerun", args=[job.pk]), follow=True)
    assert "analyses this month" in response.content.decode()
    assert not AnalysisJob.objects.filter(rerun_of=job).exists()

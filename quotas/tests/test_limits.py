"""Monthly allowances, per-upload plan limits, the refund policy and the usage numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import User
from quotas import services
from quotas.models import Plan, UsageRecord, UserQuota
from quotas.tests.helpers import charged_job, post_clip, submit
from videos.jobs import fail_job
from videos.models import AnalysisJob, JobStatus, Video
from videos.services import cancel_or_delete, retry_job

CLIP_SECONDS = 3.486  # duration of the generated clip (ffprobe)


def _next_month_start() -> str:
    return services.iso(services.period_bounds()[1])


# --- Plans and quota rows ---


@pytest.mark.django_db
def test_new_user_gets_the_default_free_plan_from_the_data_migration():
    free = Plan.objects.get(is_default=True)
    assert free.name == "Free"
    assert {f: getattr(free, f) for f in services.LIMIT_FIELDS} == {
        f: services.FREE_PLAN[f] for f in services.LIMIT_FIELDS
    }
    assert Plan.objects.filter(name="Pro", is_default=False).exists()
    user = User.objects.create_user("new@example.com", "pw-New-12345")
    assert UserQuota.objects.get(user=user).plan == free


@pytest.mark.django_db
def test_quota_row_is_created_on_demand_with_a_recreated_default_plan():
    user = User.objects.create_user("old@example.com", "pw-Old-12345")
    UserQuota.objects.all().delete()
    Plan.objects.all().delete()  # as after a test database flush
    quota = services.get_quota(user)
    assert quota.plan.name == "Free" and quota.plan.monthly_analyses == 20
    assert services.get_quota(user).pk == quota.pk


def test_period_is_the_calendar_month_in_utc():
    start, end = services.period_bounds(datetime(2026, 12, 15, 13, 5, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    # 00:30 on 1 December in UTC+2 is still November in UTC.
    local = datetime(2026, 12, 1, 0, 30, tzinfo=UTC) + timedelta(hours=-2)
    assert services.period_bounds(local)[0] == datetime(2026, 11, 1, tzinfo=UTC)
    assert services.iso(end) == "2027-01-01T00:00:00Z"


# --- Monthly allowances ---


@pytest.mark.django_db
def test_over_the_analyses_allowance_is_429_and_nothing_is_kept(
    api, user, make_plan, media_root, clip
):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    assert post_clip(api, clip).status_code == 202
    response = post_clip(api, clip)
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {
        "exceeded": "analyses",
        "limit": 1,
        "used": 1,
        "requested": 1,
        "resets_at": _next_month_start(),
    }
    assert AnalysisJob.objects.count() == Video.objects.count() == UsageRecord.objects.count() == 1
    assert len(list(media_root.glob("videos/*/*/source"))) == 1  # the refused file was deleted


@pytest.mark.django_db
def test_over_the_video_seconds_allowance(api, user, make_plan, media_root, clip):
    services.change_plan(user, make_plan("Eight seconds", monthly_video_seconds=8))
    assert post_clip(api, clip).status_code == 202
    assert post_clip(api, clip).status_code == 202
    response = post_clip(api, clip)
    assert response.status_code == 429
    details = response.json()["error"]["details"]
    assert details["exceeded"] == "video_seconds"
    assert details["limit"] == 8
    assert details["used"] == pytest.approx(2 * CLIP_SECONDS, abs=0.01)
    assert details["requested"] == pytest.approx(CLIP_SECONDS, abs=0.01)
    assert details["resets_at"] == _next_month_start()


@pytest.mark.django_db
def test_usage_before_this_month_does_not_count(user, make_plan):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    start, _ = services.period_bounds()
    UsageRecord.objects.create(
        user=user, job_uuid=uuid.uuid4(), video_seconds=5, created=start - timedelta(seconds=1)
    )
    assert services.usage_summary(user).used == services.Usage(analyses=0, video_seconds=0)
    charged_job(user)  # the month's one analysis is still available
    with pytest.raises(services.QuotaExceeded):
        charged_job(user)


@pytest.mark.django_db
def test_overrides_and_extras_change_the_limits(user, make_plan):
    services.change_plan(user, make_plan("Base", monthly_analyses=2, requests_per_minute=30))
    UserQuota.objects.filter(user=user).update(monthly_analyses=3, requests_per_minute=7)
    assert services.requests_per_minute(user) == 7
    assert services.grant_extra_analyses(user, 2) == 2
    assert services.grant_extra_analyses(user, 1) == 3  # same month: adds up
    limits = services.usage_summary(user).limits
    assert (limits.analyses, limits.extra_analyses) == (6, 3)
    # Extras are for the month they were granted in.
    next_month = services.period_bounds()[1] + timedelta(days=3)
    assert services.usage_summary(user, now=next_month).limits.analyses == 3
    assert services.grant_extra_analyses(user, 4, now=next_month) == 4  # last month's expired


# --- Per-upload limits of the plan (the settings stay the upper bound) ---


@pytest.mark.django_db
def test_plan_file_size_limit(api, user, make_plan, media_root, clip):
    services.change_plan(user, make_plan("Small", max_file_bytes=clip.stat().st_size - 1))
    response = post_clip(api, clip)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert not UsageRecord.objects.exists() and not AnalysisJob.objects.exists()


@pytest.mark.django_db
def test_plan_duration_limit(api, user, make_plan, media_root, clip):
    services.change_plan(user, make_plan("Short", max_duration_s=2))
    response = post_clip(api, clip)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_long"
    assert not UsageRecord.objects.exists() and not AnalysisJob.objects.exists()


@pytest.mark.django_db
def test_global_settings_cap_a_generous_plan(api, user, make_plan, media_root, clip, settings):
    services.change_plan(user, make_plan("Huge", max_file_bytes=10**12, max_duration_s=10**6))
    settings.MAX_UPLOAD_BYTES = clip.stat().st_size - 1
    settings.MAX_VIDEO_SECONDS = 1.0
    limits = api.get(reverse("api-usage")).json()["limits"]
    assert limits["max_file_bytes"] == settings.MAX_UPLOAD_BYTES
    assert limits["max_duration_s"] == 1.0
    response = post_clip(api, clip)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    settings.MAX_UPLOAD_BYTES = 10**9
    assert post_clip(api, clip).json()["error"]["code"] == "too_long"


# --- Refund policy ---


@pytest.mark.django_db
def test_a_failed_job_is_refunded_and_the_row_kept(user, make_plan, media_root, clip):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    job = submit(user, clip)
    assert services.usage_summary(user).used.analyses == 1
    fail_job(str(job.pk), "internal_error", "The analysis failed: boom")
    record = UsageRecord.objects.get(job=job)
    assert record.refunded_at is not None and record.refund_reason == "internal_error"
    assert services.usage_summary(user).used == services.Usage(0, 0)
    fail_job(str(job.pk), "internal_error", "again")  # already failed: nothing changes
    assert UsageRecord.objects.get(pk=record.pk).refunded_at == record.refunded_at
    submit(user, clip)  # the refunded analysis is available again
    assert services.usage_summary(user).used.analyses == 1


@pytest.mark.django_db
def test_retrying_a_refunded_job_charges_it_again(user):
    job = charged_job(user)
    fail_job(str(job.pk), "timeout", "too slow")
    assert services.usage_summary(user).used.analyses == 0
    retry_job(job)
    assert UsageRecord.objects.get(job=job).refunded_at is None
    assert services.usage_summary(user).used.analyses == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_a_canceled_job_is_refunded_queued_or_running(user, make_plan, status):
    """The cancel policy: nothing delivered, nothing charged (videos.services.CANCEL_POLICY)."""
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    job = charged_job(user, duration=300.0, status=status)  # a 5-minute video
    assert services.usage_summary(user).used == services.Usage(1, 300.0)
    assert cancel_or_delete(job) == "canceled"
    record = UsageRecord.objects.get(job=job)
    assert record.refunded_at is not None and record.refund_reason == "canceled"
    assert services.usage_summary(user).used == services.Usage(0, 0)
    charged_job(user)  # the allowance is back


@pytest.mark.django_db
def test_deleted_succeeded_jobs_still_count(user, make_plan):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    done = charged_job(user, status=JobStatus.SUCCEEDED)
    assert cancel_or_delete(done) == "deleted"
    record = UsageRecord.objects.get(job_uuid=done.pk)
    assert record.job is None and record.refunded_at is None  # kept, still charged
    assert services.usage_summary(user).used.analyses == 1
    with pytest.raises(services.QuotaExceeded):
        charged_job(user)


@pytest.mark.django_db
def test_refused_input_never_reaches_the_ledger(api, media_root, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 100)
    assert post_clip(api, path).json()["error"]["code"] == "not_media"
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db
def test_reset_usage_keeps_the_ledger(user, make_plan):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    charged_job(user)
    services.reset_usage(user)
    assert services.usage_summary(user).used.analyses == 0
    charged_job(user)
    assert UsageRecord.objects.filter(user=user).count() == 2
    assert services.usage_summary(user).used.analyses == 1


# --- Usage endpoint and dashboard ---


@pytest.mark.django_db
def test_usage_endpoint_numbers(api, user, make_plan, media_root, clip):
    plan = make_plan(
        "Numbers",
        monthly_analyses=10,
        monthly_video_seconds=100,
        max_file_bytes=50 * 1024 * 1024,
        max_duration_s=120,
        requests_per_minute=500,
    )
    services.change_plan(user, plan)
    services.grant_extra_analyses(user, 2)
    assert post_clip(api, clip).status_code == 202
    failed = post_clip(api, clip).json()
    fail_job(failed["id"], "internal_error", "boom")  # refunded: not in "used"
    charged_job(make_user_on(plan))  # another user's usage is not ours

    body = api.get(reverse("api-usage")).json()
    start, resets_at = services.period_bounds()
    assert body["plan"] == "Numbers"
    assert body["limits"] == {
        "analyses": 12,
        "video_seconds": 100,
        "max_file_bytes": 50 * 1024 * 1024,
        "max_duration_s": 120.0,
        "requests_per_minute": 500,
        "extra_analyses": 2,
    }
    assert body["used"]["analyses"] == 1
    assert body["used"]["video_seconds"] == pytest.approx(CLIP_SECONDS, abs=0.01)
    assert body["remaining"]["analyses"] == 11
    assert body["remaining"]["video_seconds"] == pytest.approx(100 - CLIP_SECONDS, abs=0.01)
    assert body["period_start"] == services.iso(start)
    assert body["resets_at"] == services.iso(resets_at)


def make_user_on(plan: Plan) -> User:
    other = User.objects.create_user(f"{uuid.uuid4().hex[:8]}@example.com", "pw-Other-12345")
    services.change_plan(other, plan)
    return other


@pytest.mark.django_db
def test_usage_endpoint_needs_authentication(client):
    response = client.get(reverse("api-usage"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_dashboard_shows_this_months_usage(client, user, make_plan):
    services.change_plan(user, make_plan("Dash", monthly_analyses=4))
    charged_job(user)
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    usage = response.context["usage"]
    assert (usage.used.analyses, usage.remaining.analyses) == (1, 3)
    page = response.content.decode()
    # Only the facts: the UI restyles this block.
    assert 'id="usage"' in page and "Dash plan" in page


@pytest.mark.django_db
def test_usage_endpoint_is_in_the_openapi_schema(api):
    schema = api.get(reverse("api-schema"), {"format": "json"}).json()
    assert "/api/v1/usage" in schema["paths"]


@pytest.mark.django_db
def test_a_job_the_reaper_gives_up_on_is_refunded(user, settings):
    from videos.reaper import reap_stuck_jobs

    job = charged_job(user)
    AnalysisJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=settings.ANALYSIS_MAX_ATTEMPTS, heartbeat_at=None
    )
    assert reap_stuck_jobs()["failed"] == 1
    record = UsageRecord.objects.get(job=job)
    assert record.refunded_at is not None and record.refund_reason == "stuck"
    assert services.usage_summary(user).used.analyses == 0


@pytest.mark.django_db
def test_the_web_form_shows_the_quota_refusal(client, user, make_plan, media_root, clip):
    services.change_plan(user, make_plan("None", monthly_analyses=0))
    client.force_login(user)
    with clip.open("rb") as fh:
        response = client.post(reverse("upload"), {"file": fh})
    assert response.status_code == 400
    assert "0 of your 0 analyses this month" in response.content.decode()
    assert not AnalysisJob.objects.exists()


@pytest.mark.django_db
def test_a_job_with_results_is_never_refunded(user):
    """Whatever path asks (an abandon beacon replayed, a bug): produced results stay charged."""
    job = charged_job(user, status=JobStatus.SUCCEEDED)
    assert services.refund_job(job.pk, "upload_abandoned") is False
    assert UsageRecord.objects.get(job=job).refunded_at is None
    assert services.usage_summary(user).used.analyses == 1


@pytest.mark.django_db
def test_a_file_that_decodes_shorter_than_it_says_is_charged_what_was_analysed(user):
    """A 10 s file whose header said 590 s was charged 590 s at submission; its results settle
    the charge at the 10 s that decoded (never above what was charged)."""
    from mlcore.inference import AnalysisResult
    from videos.jobs import save_results

    job = charged_job(user, duration=590.0, status=JobStatus.RUNNING)
    AnalysisJob.objects.filter(pk=job.pk).update(task_id="t1")
    assert services.usage_summary(user).used.video_seconds == 590.0
    result = AnalysisResult([], {"speech_detected": False}, "m", ["text"], True, 10.112)
    assert save_results(str(job.pk), result, task_id="t1")
    assert services.usage_summary(user).used.video_seconds == pytest.approx(10.112)
    assert services.settle_charge(job.pk, 300.0) is False  # never raised again

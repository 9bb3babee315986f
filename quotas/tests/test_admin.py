"""Staff admin: plans, user quotas and their actions, the ledger, and the jobs list."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from quotas import services
from quotas.models import UsageRecord, UserQuota
from quotas.tests.helpers import charged_job, post_clip
from videos.jobs import fail_job
from videos.models import AnalysisJob, JobStatus

USERS = reverse("admin:accounts_user_changelist")
JOBS = reverse("admin:videos_analysisjob_changelist")


def _action(admin_client, url: str, action: str, objects, **form):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in objects], **form}
    return admin_client.post(url, data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        reverse("admin:quotas_plan_changelist"),
        reverse("admin:quotas_usagerecord_changelist"),
        USERS,
        JOBS,
    ],
)
def test_non_staff_cannot_reach_the_admin(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_staff_without_permissions_cannot_see_plans(client, make_user):
    client.force_login(make_user(is_staff=True))
    assert client.get(reverse("admin:quotas_plan_changelist")).status_code == 403


@pytest.mark.django_db
def test_admin_pages_show_plans_quota_inline_and_usage(admin_client, user, make_plan):
    gold = make_plan("Gold", monthly_analyses=9)
    services.change_plan(user, gold)
    charged_job(user, duration=12.0)
    plans = admin_client.get(reverse("admin:quotas_plan_changelist")).content.decode()
    assert "Gold" in plans and "Free" in plans
    users = admin_client.get(USERS, {"quota__plan__id__exact": gold.pk})
    assert user.email in users.content.decode() and "Gold" in users.content.decode()
    page = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 of 9 analyses, 0.2 of 60 min of video used (plan Gold)" in text
    assert 'name="quota-0-monthly_analyses"' in text  # the overrides are editable inline
    # The add page has no inline: the sign-up signal creates the row.
    assert (
        "quota-0-plan" not in admin_client.get(reverse("admin:accounts_user_add")).content.decode()
    )


@pytest.mark.django_db
def test_grant_extra_analyses_lets_a_refused_submission_through(
    admin_client, api, user, make_plan, media_root, clip
):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    assert post_clip(api, clip).status_code == 202
    assert post_clip(api, clip).status_code == 429
    form = _action(admin_client, USERS, "grant_extra_analyses", [user])
    assert form.status_code == 200 and 'name="amount"' in form.content.decode()
    done = _action(admin_client, USERS, "grant_extra_analyses", [user], amount=1, apply="Apply")
    assert done.status_code == 302
    assert post_clip(api, clip).status_code == 202
    assert post_clip(api, clip).status_code == 429  # exactly one more


@pytest.mark.django_db
def test_reset_usage_allows_submissions_again_and_keeps_the_ledger(
    admin_client, api, user, make_plan, media_root, clip
):
    services.change_plan(user, make_plan("One", monthly_analyses=1))
    assert post_clip(api, clip).status_code == 202
    assert post_clip(api, clip).status_code == 429
    assert _action(admin_client, USERS, "reset_usage", [user]).status_code == 302
    assert api.get(reverse("api-usage")).json()["used"]["analyses"] == 0
    assert post_clip(api, clip).status_code == 202
    assert UsageRecord.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_change_plan_gives_new_limits(admin_client, api, user, make_plan):
    services.change_plan(user, make_plan("Small", monthly_analyses=1, requests_per_minute=100))
    big = make_plan("Big", monthly_analyses=50, monthly_video_seconds=9000)
    assert api.get(reverse("api-usage")).json()["plan"] == "Small"
    form = _action(admin_client, USERS, "change_plan", [user])
    assert form.status_code == 200 and "Big" in form.content.decode()
    done = _action(admin_client, USERS, "change_plan", [user], plan=big.pk, apply="Apply")
    assert done.status_code == 302
    body = api.get(reverse("api-usage")).json()
    assert body["plan"] == "Big"
    assert body["limits"]["analyses"] == 50 and body["limits"]["video_seconds"] == 9000


@pytest.mark.django_db
def test_override_edited_inline_changes_what_the_api_allows(admin_client, api, user, make_plan):
    plan = make_plan("Ten", monthly_analyses=10)
    services.change_plan(user, plan)
    quota = UserQuota.objects.get(user=user)
    user.refresh_from_db()
    data = {
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "quota-TOTAL_FORMS": "1",
        "quota-INITIAL_FORMS": "1",
        "quota-MIN_NUM_FORMS": "0",
        "quota-MAX_NUM_FORMS": "1",
        "quota-0-id": str(quota.pk),
        "quota-0-user": str(user.pk),
        "quota-0-plan": str(plan.pk),
        "quota-0-monthly_analyses": "1",
        "quota-0-extra_analyses": "0",
    }
    response = admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert api.get(reverse("api-usage")).json()["limits"]["analyses"] == 1
    charged_job(user)
    with pytest.raises(services.QuotaExceeded):
        charged_job(user)


@pytest.mark.django_db
def test_usage_ledger_is_read_only(admin_client, user):
    job = charged_job(user)
    record = UsageRecord.objects.get(job=job)
    listing = admin_client.get(reverse("admin:quotas_usagerecord_changelist"), {"q": user.email})
    assert str(job.pk) in listing.content.decode()
    assert admin_client.get(reverse("admin:quotas_usagerecord_add")).status_code == 403
    change_url = reverse("admin:quotas_usagerecord_change", args=[record.pk])
    assert admin_client.get(change_url).status_code == 200  # view only
    assert admin_client.post(change_url, {"video_seconds": "0"}).status_code == 403
    delete_url = reverse("admin:quotas_usagerecord_delete", args=[record.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert UsageRecord.objects.get(pk=record.pk).video_seconds == 3.0


@pytest.mark.django_db
def test_jobs_admin_search_filters_retry_and_cancel(admin_client, user, make_user):
    failed = charged_job(user)
    fail_job(str(failed.pk), "internal_error", "boom")
    queued = charged_job(user)
    done = charged_job(user, status=JobStatus.SUCCEEDED)
    stranger = charged_job(make_user())

    found = admin_client.get(JOBS, {"q": user.email}).content.decode()
    assert str(failed.pk) in found and str(stranger.pk) not in found
    only_failed = admin_client.get(JOBS, {"status__exact": "failed"}).content.decode()
    assert str(failed.pk) in only_failed and str(queued.pk) not in only_failed
    assert admin_client.get(reverse("admin:videos_analysisjob_add")).status_code == 403

    # Retry: the failed job is queued again (and charged again); the others are left alone.
    assert _action(admin_client, JOBS, "retry", [failed, done]).status_code == 302
    failed.refresh_from_db()
    assert failed.status == JobStatus.QUEUED and failed.error_code == ""
    assert UsageRecord.objects.get(job=failed).refunded_at is None
    assert AnalysisJob.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED

    # Cancel: unfinished jobs are canceled; a finished one is neither canceled nor deleted.
    assert _action(admin_client, JOBS, "cancel", [queued, done]).status_code == 302
    assert AnalysisJob.objects.get(pk=queued.pk).status == JobStatus.CANCELED
    assert AnalysisJob.objects.get(pk=done.pk).status == JobStatus.SUCCEEDED
    page = admin_client.get(reverse("admin:videos_analysisjob_change", args=[done.pk]))
    assert page.status_code == 200


@pytest.mark.django_db
def test_only_one_plan_can_be_the_default(admin_client):
    data = {
        "name": "Second default",
        "monthly_analyses": 1,
        "monthly_video_minutes": 1,
        "max_file_mb": 1,
        "max_duration_minutes": 1,
        "requests_per_minute": 10,
        "is_default": "on",
    }
    response = admin_client.post(reverse("admin:quotas_plan_add"), data)
    assert response.status_code == 200  # the form again, with the error
    assert "Another plan is the default" in response.content.decode()
    assert services.default_plan().name == "Free"

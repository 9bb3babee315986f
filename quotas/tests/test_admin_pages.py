"""What staff see in the admin: one "Accounts" section, limits in MB and minutes, usage on the
user list, the quota near the top of a user's page with the plan's values beside empty
overrides, "Change plan…" opening on the current plan, and the product's name and icon (also
on the API's Swagger page)."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.templatetags.static import static
from django.urls import reverse

from quotas import services
from quotas.models import Plan, UserQuota
from quotas.tests.conftest import MB
from quotas.tests.helpers import charged_job

pytestmark = pytest.mark.django_db
USERS = reverse("admin:accounts_user_changelist")


def test_one_accounts_section_and_the_products_name_and_icon(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    sections = re.findall(r'<caption>\s*<a [^>]*class="section"[^>]*>([^<]+)</a>', page)
    assert sections.count("Accounts") == 1, sections
    accounts = page.split(">Accounts</a>")[1].split("</table>")[0]
    for model in ("Email addresses", "Users", "Api keys"):
        assert model in accounts, model
    assert "Video Sentiment administration" in page and "Django administration" not in page
    assert f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">' in page


def test_swagger_page_has_the_products_icon(admin_client):
    page = admin_client.get(reverse("api-docs")).content.decode()
    assert f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">' in page
    assert "favicon-32x32.png" not in page  # not Swagger's own


def test_plans_in_mb_and_minutes(admin_client, make_plan):
    make_plan("Gold", monthly_video_seconds=90 * 60, max_file_bytes=250 * MB, max_duration_s=90)
    listing = admin_client.get(reverse("admin:quotas_plan_changelist")).content.decode()
    gold = listing.split(">Gold<")[1].split("</tr>")[0]
    assert "90 min" in gold and "250 MB" in gold and "1.5 min" in gold
    assert str(250 * MB) not in listing

    form = admin_client.get(reverse("admin:quotas_plan_add")).content.decode()
    assert "Max file size (MB)" in form and "Video per month (min)" in form
    response = admin_client.post(
        reverse("admin:quotas_plan_add"),
        {
            "name": "Team",
            "monthly_analyses": 100,
            "monthly_video_minutes": "120",
            "max_file_mb": "500",
            "max_duration_minutes": "2.5",
            "requests_per_minute": 300,
        },
    )
    assert response.status_code == 302
    team = Plan.objects.get(name="Team")
    assert (team.monthly_video_seconds, team.max_file_bytes, team.max_duration_s) == (
        7200,
        500 * MB,
        150,
    )
    edit = admin_client.get(reverse("admin:quotas_plan_change", args=[team.pk])).content.decode()
    assert 'name="max_file_mb" value="500"' in edit and 'value="2.5"' in edit


def test_user_list_shows_this_months_usage(admin_client, user, make_plan):
    services.change_plan(user, make_plan("Gold", monthly_analyses=9))
    charged_job(user, duration=90.0)
    listing = admin_client.get(USERS).content.decode()
    assert "Used this month" in listing
    row = listing.split(f">{user.email}</a>")[1].split("</tr>")[0]
    assert "1/9 · 1.5/60 min" in row


def test_user_page_quota_first_with_the_plans_values(admin_client, user, make_plan):
    gold = make_plan("Gold", monthly_analyses=9, max_file_bytes=200 * MB, max_duration_s=600)
    services.change_plan(user, gold)
    page = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk])).content.decode()
    # Right after the login fields, before "Personal info" and "Permissions".
    assert page.index("Plan, usage and limits") < page.index("Personal info")
    assert page.index('name="quota-0-plan"') < page.index('name="is_staff"')
    assert re.search(r'name="quota-0-max_file_mb"[^>]*placeholder="200 MB"', page) or re.search(
        r'placeholder="200 MB"[^>]*name="quota-0-max_file_mb"', page
    )
    assert "Empty: the Gold plan’s 9." in page and "Empty: the Gold plan’s 10 min." in page

    # An override typed in MB is stored in bytes; the others stay empty (the plan's).
    quota = UserQuota.objects.get(user=user)
    data = {
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "quota-TOTAL_FORMS": "1",
        "quota-INITIAL_FORMS": "1",
        "quota-MIN_NUM_FORMS": "0",
        "quota-MAX_NUM_FORMS": "1",
        "quota-0-id": str(quota.pk),
        "quota-0-user": str(user.pk),
        "quota-0-plan": str(gold.pk),
        "quota-0-max_file_mb": "50",
        "quota-0-extra_analyses": "0",
    }
    response = admin_client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302
    quota.refresh_from_db()
    assert quota.max_file_bytes == 50 * MB and quota.max_duration_s is None
    assert services.usage_summary(user).limits.max_file_bytes == 50 * MB


def test_change_plan_opens_on_the_current_plan(admin_client, make_user, make_plan):
    gold, silver = make_plan("Gold"), make_plan("Silver")
    first, second = make_user(gold), make_user(gold)

    def form_for(*users) -> str:
        data = {"action": "change_plan", ACTION_CHECKBOX_NAME: [str(u.pk) for u in users]}
        return admin_client.post(USERS, data).content.decode()

    assert f'<option value="{gold.pk}" selected>Gold</option>' in form_for(first, second)
    services.change_plan(second, silver)
    mixed = form_for(first, second)  # two plans: no guess
    assert f'<option value="{gold.pk}">Gold</option>' in mixed and 'value="" selected>' in mixed

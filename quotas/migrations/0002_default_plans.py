"""Data: the default "Free" plan (new users), a "Pro" plan, and a quota row for every user that
existed before quotas did. Values are written out here (not imported) so the migration keeps
meaning what it meant when it was written."""

from django.db import migrations

MB = 1024 * 1024
PLANS = [
    {
        "name": "Free",
        "monthly_analyses": 20,
        "monthly_video_seconds": 30 * 60,
        "max_file_bytes": 200 * MB,
        "max_duration_s": 10 * 60,
        "requests_per_minute": 60,
        "is_default": True,
    },
    {
        "name": "Pro",
        "monthly_analyses": 500,
        "monthly_video_seconds": 20 * 3600,
        "max_file_bytes": 500 * MB,
        "max_duration_s": 30 * 60,
        "requests_per_minute": 600,
        "is_default": False,
    },
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    UserQuota = apps.get_model("quotas", "UserQuota")
    User = apps.get_model("accounts", "User")
    for values in PLANS:
        Plan.objects.update_or_create(name=values["name"], defaults=values)
    free = Plan.objects.get(name="Free")
    UserQuota.objects.bulk_create(
        [UserQuota(user=user, plan=free) for user in User.objects.filter(quota__isnull=True)]
    )


def remove_plans(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    UserQuota = apps.get_model("quotas", "UserQuota")
    UserQuota.objects.all().delete()
    Plan.objects.filter(name__in=[p["name"] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("quotas", "0001_initial"),
        ("accounts", "0002_apikey"),
    ]

    operations = [migrations.RunPython(create_plans, remove_plans)]

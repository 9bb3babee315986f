"""Every new user gets a quota row on the default plan; a job saved as failed is refunded."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_quota(sender, instance, created: bool, raw: bool = False, **_: object) -> None:
    if created and not raw:  # raw: loaddata; the fixture brings its own rows
        from quotas.models import UserQuota
        from quotas.services import default_plan

        UserQuota.objects.get_or_create(user=instance, defaults={"plan": default_plan()})


@receiver(post_save, sender="videos.AnalysisJob")
def refund_failed_job(sender, instance, raw: bool = False, **_: object) -> None:
    """Safety net for code that fails a job with save() (the reaper, admin edits);
    videos.jobs._fail uses update() and calls refund_job itself. Idempotent."""
    if instance.status == "failed" and not raw:
        from quotas.services import refund_job

        refund_job(instance.pk, instance.error_code or "failed")

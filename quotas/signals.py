"""Every new user gets a quota row on the default plan; a job saved as failed or canceled is
refunded."""

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
    """Safety net for code that fails or cancels a job with save() (the reaper, admin edits);
    videos.jobs._fail and videos.services.cancel_job call refund_job themselves. Idempotent."""
    if instance.status in ("failed", "canceled") and not raw:
        from quotas.services import refund_job

        reason = "canceled" if instance.status == "canceled" else instance.error_code
        refund_job(instance.pk, reason or "failed")

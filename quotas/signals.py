"""Every new user gets a quota row on the default plan."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_quota(sender, instance, created: bool, raw: bool = False, **_: object) -> None:
    if created and not raw:  # raw: loaddata; the fixture brings its own rows
        from quotas.models import UserQuota
        from quotas.services import default_plan

        UserQuota.objects.get_or_create(user=instance, defaults={"plan": default_plan()})

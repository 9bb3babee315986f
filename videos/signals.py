"""Deleting a video deletes its stored file (after the deleting transaction commits)."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from videos.models import Video


@receiver(post_delete, sender=Video)
def delete_stored_file(sender, instance: Video, **_: object) -> None:
    if instance.file.name:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))

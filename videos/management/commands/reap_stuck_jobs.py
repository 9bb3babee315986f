from django.core.management.base import BaseCommand

from videos.reaper import clean_expired_uploads, reap_stuck_jobs
from webhooks.services import resend_lost_deliveries


class Command(BaseCommand):
    help = (
        "Requeue or fail analysis jobs stuck in running, resend queued jobs whose message was "
        "lost, remove expired direct-upload slots, resend webhook deliveries whose message was "
        "lost."
    )

    def handle(self, *args, **options) -> None:
        counts = {
            **reap_stuck_jobs(),
            "expired_uploads_removed": clean_expired_uploads(),
            "webhooks_resent": resend_lost_deliveries(),
        }
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

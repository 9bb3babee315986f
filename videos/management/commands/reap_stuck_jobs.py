from django.core.management.base import BaseCommand

from videos.reaper import reap_stuck_jobs


class Command(BaseCommand):
    help = (
        "Requeue or fail analysis jobs stuck in running, resend queued jobs whose message was lost."
    )

    def handle(self, *args, **options) -> None:
        counts = reap_stuck_jobs()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))

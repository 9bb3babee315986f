"""Staff pages for analysis jobs: search, filters, and retry / cancel actions (services do it)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from videos import services
from videos.errors import Conflict
from videos.models import AnalysisJob
from webhooks.admin import WebhookDeliveryInline


@admin.register(AnalysisJob)
class AnalysisJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "owner",
        "video",
        "status",
        "stage",
        "progress",
        "attempts",
        "error_code",
        "queued_at",
        "finished_at",
    )
    list_filter = ("status", "stage", "error_code", "queued_at")
    search_fields = ("=id", "owner__email", "video__original_name", "error_code")
    list_select_related = ("owner", "video")
    date_hierarchy = "queued_at"
    actions = ("retry", "cancel")
    inlines = (WebhookDeliveryInline,)
    readonly_fields = [f.name for f in AnalysisJob._meta.fields]
    exclude = ("summary", "stage_timings", "warnings")  # shown read-only below
    readonly_fields += ["summary", "stage_timings", "warnings"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs come from submissions

    @admin.action(description="Retry (failed or canceled jobs)", permissions=["change"])
    def retry(self, request: HttpRequest, jobs: QuerySet) -> None:
        done = skipped = 0
        for job in jobs:
            try:
                services.retry_job(job)
                done += 1
            except Conflict:
                skipped += 1
        self.message_user(
            request, f"Queued again: {done}; skipped (not failed/canceled): {skipped}."
        )
        if skipped:
            self.message_user(
                request, "Only failed or canceled jobs can be retried.", messages.WARNING
            )

    @admin.action(description="Cancel (unfinished jobs)", permissions=["change"])
    def cancel(self, request: HttpRequest, jobs: QuerySet) -> None:
        # cancel_job, not cancel_or_delete: a job that finished meanwhile must not be deleted here.
        canceled = sum(services.cancel_job(job) for job in jobs)
        self.message_user(
            request,
            f"Canceled: {canceled}; already finished (left as they were): {len(jobs) - canceled}.",
        )

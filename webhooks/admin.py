"""Staff pages: every callback delivery with its attempts (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from webhooks.models import WebhookAttempt, WebhookDelivery


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "status_code", "error")
    readonly_fields = fields


class WebhookDeliveryInline(ReadOnlyInline):
    """On the analysis job's admin page."""

    model = WebhookDelivery
    fields = (
        "event",
        "url",
        "status",
        "attempt_count",
        "last_status_code",
        "last_error",
        "created",
    )
    readonly_fields = fields
    show_change_link = True


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "event",
        "url",
        "status",
        "attempt_count",
        "last_status_code",
        "last_error",
        "job",
    )
    list_filter = ("status", "event", "created")
    search_fields = ("=id", "=job__id", "url", "job__owner__email")
    list_select_related = ("job",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = (WebhookAttemptInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from jobs that end

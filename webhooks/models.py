"""Per-user signing secrets and the record of every callback delivery and its attempts.

A job submitted with a `callback_url` gets one `WebhookDelivery` when it ends (succeeded, failed
or canceled); each POST to the receiver is a `WebhookAttempt` (status code or error, time)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class WebhookSecret(models.Model):
    """The key that signs a user's callbacks (HMAC-SHA256). Kept in clear: signing needs it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.CharField(max_length=100)
    created = models.DateTimeField(help_text="When this secret was made (or last rotated).")

    def __str__(self) -> str:
        return f"{self.user} ({self.secret[:10]}…)"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its first attempt or for a retry
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # attempts used up, or the target was refused


class WebhookDelivery(models.Model):
    """One event (a job ended) to POST to the job's callback URL, retried with backoff."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(
        "videos.AnalysisJob", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    url = models.CharField(max_length=2000)
    event = models.CharField(max_length=32)
    # The JSON body, frozen when the job ended: every attempt sends these exact bytes.
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # Pending: when the next attempt may start (also the lease of an attempt in progress).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} [{self.status}]"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    # The receiver's HTTP status; null when no answer came (refused target, network error).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("delivery", "number")
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="unique_attempt_number")
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error[:40]}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

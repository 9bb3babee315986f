"""Plans, each user's plan (with overrides) and the usage ledger.

Usage is counted from the ledger (`UsageRecord`), one row per accepted analysis, over the calendar
month in UTC. Refund policy: a job that ends `failed` or `canceled` is refunded (its row gets
`refunded_at` and stays for audit); a succeeded job the user deleted still counts; a submission
refused before queueing (bad file, over a limit) never reaches the ledger.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Plan(models.Model):
    """Monthly allowances and per-upload limits. The global settings (MAX_UPLOAD_BYTES,
    MAX_VIDEO_SECONDS) stay the upper bound whatever a plan says."""

    name = models.CharField(max_length=50, unique=True)
    monthly_analyses = models.PositiveIntegerField()
    monthly_video_seconds = models.PositiveIntegerField()
    max_file_bytes = models.PositiveBigIntegerField()
    max_duration_s = models.PositiveIntegerField("max duration (s)")
    requests_per_minute = models.PositiveIntegerField("API requests per minute")
    is_default = models.BooleanField(default=False, help_text="The plan new users get.")

    class Meta:
        ordering = ("monthly_analyses", "name")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_plan",
                violation_error_message="Another plan is the default; unmark it first.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserQuota(models.Model):
    """A user's plan, per-user overrides (empty = the plan's value) and extra analyses.

    Also the row that submissions lock (SELECT ... FOR UPDATE) while they count and charge, so
    concurrent submissions by one user are serialized."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="quotas")
    monthly_analyses = models.PositiveIntegerField(null=True, blank=True)
    monthly_video_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_file_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_duration_s = models.PositiveIntegerField("max duration (s)", null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(
        "API requests per minute", null=True, blank=True
    )
    extra_analyses = models.PositiveIntegerField(
        default=0, help_text="Granted on top of the monthly allowance, for `extra_period` only."
    )
    extra_period = models.DateField(
        null=True, blank=True, help_text="First day of the month the extra analyses are for."
    )
    usage_reset_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Usage before this time is not counted (the ledger keeps it).",
    )

    class Meta:
        verbose_name = "quota"

    def __str__(self) -> str:
        return f"{self.user} ({self.plan})"


class UsageRecord(models.Model):
    """One accepted analysis. Never deleted; refunds and resets only change what is counted."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    # SET_NULL: deleting a finished job with its video must not give the analysis back.
    job = models.OneToOneField(
        "videos.AnalysisJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_record",
    )
    job_uuid = models.UUIDField("job id", help_text="Kept after the job is deleted.")
    video_seconds = models.FloatField()
    created = models.DateTimeField()
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("-created",)
        indexes = [models.Index(fields=["user", "created"])]

    def __str__(self) -> str:
        return f"{self.user} {self.created:%Y-%m-%d %H:%M} {self.video_seconds:.1f} s"

"""Plans, usage and limits as plain functions; views, admin, videos and tests call these.

Period: the calendar month in UTC. Usage = this period's ledger rows that are not refunded and
not before the user's `usage_reset_at`.

Refund policy: a job that ends `failed` is refunded, whatever the reason (the ledger row gets
`refunded_at` and stays for audit), and so is a `canceled` one, whether it was queued or already
running (it delivers nothing, so it is charged nothing: videos.services.CANCEL_POLICY); an admin
retry of either charges the row again, and "run again" is a new job, charged as a submission. A
succeeded job the user deleted still counts (the row loses its job link, not its charge). A
submission refused before queueing never reaches the ledger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from quotas.models import Plan, UsageRecord, UserQuota
from videos.errors import ServiceError

if TYPE_CHECKING:
    from accounts.models import User
    from videos.models import AnalysisJob, Video

MB = 1024 * 1024
# The plan new users get when no plan is marked default (the data migration creates the same).
FREE_PLAN = {
    "name": "Free",
    "monthly_analyses": 20,
    "monthly_video_seconds": 30 * 60,
    "max_file_bytes": 200 * MB,
    "max_duration_s": 10 * 60,
    "requests_per_minute": 60,
}
LIMIT_FIELDS = (
    "monthly_analyses",
    "monthly_video_seconds",
    "max_file_bytes",
    "max_duration_s",
    "requests_per_minute",
)

# The charging rule in words, shown where the user decides (upload page), on results and in the
# API docs: the one statement of it (the rule itself is the refund code below).
CHARGE_POLICY = (
    "An analysis counts against your monthly allowance (one analysis and the minutes of its video) "
    "once it finishes, also when it found no speech and also if you delete it afterwards. A "
    "failed or canceled analysis is refunded in full."
)


class QuotaExceeded(ServiceError):
    status = 429


@dataclass(frozen=True)
class Limits:
    """What applies to a user now: plan, overrides and this period's extras, capped by the
    global upload settings."""

    plan: str
    analyses: int  # monthly allowance + extra analyses granted for this period
    video_seconds: int
    max_file_bytes: int
    max_duration_s: float
    requests_per_minute: int
    extra_analyses: int


@dataclass(frozen=True)
class Usage:
    analyses: int
    video_seconds: float


@dataclass(frozen=True)
class UsageSummary:
    plan: str
    limits: Limits
    used: Usage
    remaining: Usage
    period_start: datetime
    resets_at: datetime


def period_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start of this calendar month (UTC) and start of the next one (when usage resets)."""
    now = (now or timezone.now()).astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF renders datetimes."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def default_plan() -> Plan:
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:  # nobody marked one (or a test flushed the data migration's rows)
        plan, _ = Plan.objects.get_or_create(name=FREE_PLAN["name"], defaults=FREE_PLAN)
    return plan


def get_quota(user: User) -> UserQuota:
    """The user's quota row, created with the default plan if missing (users made before quotas
    existed, or by code that bypassed the signal)."""
    quota = UserQuota.objects.select_related("plan").filter(user=user).first()
    if quota is None:
        quota, _ = UserQuota.objects.select_related("plan").get_or_create(
            user=user, defaults={"plan": default_plan()}
        )
    return quota


def _override(quota: UserQuota, field: str) -> int:
    value = getattr(quota, field)
    return getattr(quota.plan, field) if value is None else value


def _period_key(now: datetime) -> date:
    return period_bounds(now)[0].date()


def effective_limits(quota: UserQuota, now: datetime | None = None) -> Limits:
    now = now or timezone.now()
    extra = quota.extra_analyses if quota.extra_period == _period_key(now) else 0
    return Limits(
        plan=quota.plan.name,
        analyses=_override(quota, "monthly_analyses") + extra,
        video_seconds=_override(quota, "monthly_video_seconds"),
        max_file_bytes=min(_override(quota, "max_file_bytes"), settings.MAX_UPLOAD_BYTES),
        max_duration_s=min(float(_override(quota, "max_duration_s")), settings.MAX_VIDEO_SECONDS),
        requests_per_minute=_override(quota, "requests_per_minute"),
        extra_analyses=extra,
    )


def period_usage(quota: UserQuota, now: datetime | None = None) -> Usage:
    start, _ = period_bounds(now)
    if quota.usage_reset_at and quota.usage_reset_at > start:
        start = quota.usage_reset_at
    totals = UsageRecord.objects.filter(
        user_id=quota.user_id, created__gte=start, refunded_at__isnull=True
    ).aggregate(analyses=Count("id"), seconds=Sum("video_seconds"))
    return Usage(analyses=totals["analyses"], video_seconds=round(totals["seconds"] or 0.0, 3))


def usage_summary(user: User, now: datetime | None = None) -> UsageSummary:
    """Plan, limits, used, remaining and reset time: the usage endpoint and the dashboard."""
    now = now or timezone.now()
    quota = get_quota(user)
    limits = effective_limits(quota, now)
    used = period_usage(quota, now)
    start, resets_at = period_bounds(now)
    remaining = Usage(
        analyses=max(0, limits.analyses - used.analyses),
        video_seconds=round(max(0.0, limits.video_seconds - used.video_seconds), 3),
    )
    return UsageSummary(limits.plan, limits, used, remaining, start, resets_at)


def upload_limits(user: User) -> tuple[int, float]:
    """(max bytes, max seconds) for one upload by this user: their plan's, within the settings."""
    limits = effective_limits(get_quota(user))
    return limits.max_file_bytes, limits.max_duration_s


def requests_per_minute(user: User) -> int:
    return _override(get_quota(user), "requests_per_minute")


def _refusal(what: str, limit: float, used: float, requested: float, resets_at: datetime):
    when = f"{resets_at:%Y-%m-%d %H:%M} UTC"
    if what == "analyses":
        message = (
            f"You have used {used:g} of your {limit:g} analyses this month; "
            f"the allowance resets on {when}."
        )
    else:
        message = (
            f"This {math.ceil(requested)} s video would take you past your {limit:g} s of video "
            f"this month ({used:g} s used); the allowance resets on {when}."
        )
    return QuotaExceeded(
        "quota_exceeded",
        message,
        details={
            "exceeded": what,
            "limit": limit,
            "used": used,
            "requested": requested,
            "resets_at": iso(resets_at),
        },
    )


def charge_analysis(user: User, job: AnalysisJob, video: Video) -> UsageRecord:
    """Check the user's monthly allowance and record the analysis, or raise QuotaExceeded.

    Call it in the transaction that creates the job: the user's quota row stays locked
    (SELECT ... FOR UPDATE) until that transaction ends, so concurrent submissions count and
    charge one after another and can never exceed a limit together."""
    get_quota(user)  # make sure there is a row to lock
    with transaction.atomic():
        # of=("self",): lock the user's row only, not the plan every user shares.
        quota = (
            UserQuota.objects.select_for_update(of=("self",)).select_related("plan").get(user=user)
        )
        now = timezone.now()
        limits = effective_limits(quota, now)
        used = period_usage(quota, now)
        _, resets_at = period_bounds(now)
        if used.analyses + 1 > limits.analyses:
            raise _refusal("analyses", limits.analyses, used.analyses, 1, resets_at)
        seconds = round(video.duration, 3)
        if used.video_seconds + seconds > limits.video_seconds:
            raise _refusal(
                "video_seconds", limits.video_seconds, used.video_seconds, seconds, resets_at
            )
        return UsageRecord.objects.create(
            user=user, job=job, job_uuid=job.pk, video_seconds=seconds, created=now
        )


def refund_job(job_id: object, reason: str) -> bool:
    """A job ended failed or canceled: give its analysis back (the row stays, marked).
    Idempotent. Never for a job whose results were produced (whatever the caller thinks)."""
    from videos.models import JobStatus

    return bool(
        UsageRecord.objects.filter(job_id=job_id, refunded_at__isnull=True)
        .exclude(job__status=JobStatus.SUCCEEDED)
        .update(refunded_at=timezone.now(), refund_reason=reason[:64])
    )


def settle_charge(job_id: object, analysed_seconds: float) -> bool:
    """The analysis covered less than the file declared (and was charged for at submission): a
    header that overstated the length. Charge what was analysed; never raise a charge."""
    return bool(
        UsageRecord.objects.filter(job_id=job_id, video_seconds__gt=analysed_seconds).update(
            video_seconds=round(analysed_seconds, 3)
        )
    )


def recharge_job(job_id: object) -> bool:
    """A refunded job runs again (admin retry): it counts again. No limit check: an admin chose
    to run it."""
    return bool(
        UsageRecord.objects.filter(job_id=job_id, refunded_at__isnull=False).update(
            refunded_at=None, refund_reason=""
        )
    )


def change_plan(user: User, plan: Plan) -> None:
    """Move the user to `plan`; their per-user overrides stay."""
    quota = get_quota(user)
    quota.plan = plan
    quota.save(update_fields=["plan"])


def grant_extra_analyses(user: User, amount: int, now: datetime | None = None) -> int:
    """Add `amount` analyses for the current period only; returns this period's extras."""
    if amount < 1:
        raise ValueError("amount must be positive")
    key = _period_key(now or timezone.now())
    get_quota(user)
    with transaction.atomic():
        quota = UserQuota.objects.select_for_update(of=("self",)).get(user=user)
        # Extras granted for an earlier month have expired: start from zero.
        quota.extra_analyses = amount + (quota.extra_analyses if quota.extra_period == key else 0)
        quota.extra_period = key
        quota.save(update_fields=["extra_analyses", "extra_period"])
    return quota.extra_analyses


def reset_usage(user: User, now: datetime | None = None) -> None:
    """Count this period's usage from now on; the ledger rows before stay (audit)."""
    quota = get_quota(user)
    quota.usage_reset_at = now or timezone.now()
    quota.save(update_fields=["usage_reset_at"])

"""Staff pages: plans, the read-only usage ledger, and the pieces the user admin
(accounts/admin.py) uses: the quota inline and the change plan / grant / reset actions."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.models import User
from quotas import services
from quotas.models import Plan, UsageRecord, UserQuota

# Limits are stored in bytes and seconds (what the code compares); staff read and type them in
# MB and minutes. model field -> (form field, label, model units per form unit, unit)
UNITS: dict[str, tuple[str, str, int, str]] = {
    "monthly_video_seconds": ("monthly_video_minutes", "Video per month (min)", 60, "min"),
    "max_file_bytes": ("max_file_mb", "Max file size (MB)", services.MB, "MB"),
    "max_duration_s": ("max_duration_minutes", "Max video length (min)", 60, "min"),
}


def in_units(value: float | None, field: str) -> str:
    """1800 s -> "30"; 200 * MB -> "200"; 90 s -> "1.5"."""
    if value is None:
        return "—"
    return f"{value / UNITS[field][2]:.2f}".rstrip("0").rstrip(".")


def _unit_field(field: str, *, required: bool) -> forms.DecimalField:
    _, label, _, _ = UNITS[field]
    return forms.DecimalField(
        label=label, required=required, min_value=0, max_digits=12, decimal_places=2
    )


class _UnitsForm(forms.ModelForm):
    """Shows the byte and second fields in MB and minutes, and stores them back."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field, (name, _, _, _) in UNITS.items():
            value = getattr(self.instance, field, None)
            if value is not None and name not in self.initial:
                self.initial[name] = in_units(value, field)

    def clean(self) -> dict:
        data = super().clean()
        for field, (name, _, factor, _) in UNITS.items():
            value = data.get(name)
            setattr(self.instance, field, None if value is None else round(value * factor))
        return data


class PlanForm(_UnitsForm):
    monthly_video_minutes = _unit_field("monthly_video_seconds", required=True)
    max_file_mb = _unit_field("max_file_bytes", required=True)
    max_duration_minutes = _unit_field("max_duration_s", required=True)

    class Meta:
        model = Plan
        fields = ("name", "monthly_analyses", "requests_per_minute", "is_default")


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanForm
    fields = (
        "name",
        "monthly_analyses",
        "monthly_video_minutes",
        "max_file_mb",
        "max_duration_minutes",
        "requests_per_minute",
        "is_default",
    )
    list_display = (
        "name",
        "monthly_analyses",
        "video_per_month",
        "max_file_size",
        "max_video_length",
        "requests_per_minute",
        "is_default",
        "users",
    )
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(user_count=Count("quotas"))

    @admin.display(ordering="user_count")
    def users(self, plan: Plan) -> int:
        return plan.user_count

    @admin.display(description="Video per month", ordering="monthly_video_seconds")
    def video_per_month(self, plan: Plan) -> str:
        return f"{in_units(plan.monthly_video_seconds, 'monthly_video_seconds')} min"

    @admin.display(description="Max file size", ordering="max_file_bytes")
    def max_file_size(self, plan: Plan) -> str:
        return f"{in_units(plan.max_file_bytes, 'max_file_bytes')} MB"

    @admin.display(description="Max video length", ordering="max_duration_s")
    def max_video_length(self, plan: Plan) -> str:
        return f"{in_units(plan.max_duration_s, 'max_duration_s')} min"


def usage_text(user: User) -> str:
    s = services.usage_summary(user)
    return (
        f"{s.used.analyses} of {s.limits.analyses} analyses, "
        f"{s.used.video_seconds / 60:.1f} of {s.limits.video_seconds / 60:g} min of video used "
        f"(plan {s.plan}); resets {s.resets_at:%Y-%m-%d %H:%M} UTC"
    )


def usage_short(quota: UserQuota) -> str:
    """The user list's column: "3/20 · 4.5/30 min" (one query: the quota row is joined)."""
    limits = services.effective_limits(quota)
    used = services.period_usage(quota)
    return (
        f"{used.analyses}/{limits.analyses} · "
        f"{used.video_seconds / 60:.1f}/{limits.video_seconds / 60:g} min"
    )


class UserQuotaForm(_UnitsForm):
    """The overrides: empty means the plan's value, which each field shows beside it."""

    monthly_video_minutes = _unit_field("monthly_video_seconds", required=False)
    max_file_mb = _unit_field("max_file_bytes", required=False)
    max_duration_minutes = _unit_field("max_duration_s", required=False)

    class Meta:
        model = UserQuota
        fields = (
            "plan",
            "monthly_analyses",
            "requests_per_minute",
            "extra_analyses",
            "extra_period",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "extra_analyses"
        ].help_text = (
            "Granted on top of the monthly allowance, for the month of “Extra period” only."
        )
        plan = self.instance.plan if self.instance.plan_id else None
        if plan is None:
            return
        shown = {
            "monthly_analyses": f"{plan.monthly_analyses}",
            "requests_per_minute": f"{plan.requests_per_minute}",
            **{
                name: f"{in_units(getattr(plan, field), field)} {unit}"
                for field, (name, _, _, unit) in UNITS.items()
            },
        }
        for name, value in shown.items():
            self.fields[name].widget.attrs["placeholder"] = value
            self.fields[name].help_text = f"Empty: the {plan.name} plan’s {value}."


class UserQuotaInline(admin.StackedInline):
    """Plan, overrides (empty = the plan's value) and this period's usage, on the user page."""

    model = UserQuota
    form = UserQuotaForm
    can_delete = False
    max_num = 1
    verbose_name = verbose_name_plural = "plan, usage and limits"
    fields = (
        "plan",
        "usage_this_period",
        ("monthly_analyses", "monthly_video_minutes"),
        ("max_file_mb", "max_duration_minutes", "requests_per_minute"),
        ("extra_analyses", "extra_period"),
        "usage_reset_at",
    )
    readonly_fields = ("usage_this_period", "usage_reset_at")

    @admin.display(description="This period's usage")
    def usage_this_period(self, quota: UserQuota) -> str:
        return usage_text(quota.user) if quota.pk else "—"


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """The ledger is an audit trail: staff can read it, nobody edits it here."""

    list_display = ("created", "user", "job_uuid", "video_seconds", "refunded_at", "refund_reason")
    list_filter = (("refunded_at", admin.EmptyFieldListFilter), "created")
    search_fields = ("user__email", "=job_uuid")
    date_hierarchy = "created"
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- Actions on the user list (registered by accounts.admin.UserAdmin) ---


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(Plan.objects.all())

    @staticmethod
    def initial_for(users: QuerySet) -> dict:
        """The users' current plan, when they share one: the form opens on it."""
        plans = set(UserQuota.objects.filter(user__in=users).values_list("plan", flat=True))
        return {"plan": plans.pop()} if len(plans) == 1 else {}


class GrantExtraForm(forms.Form):
    amount = forms.IntegerField(
        min_value=1, max_value=100_000, initial=10, help_text="For the current month only."
    )


def _with_form(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    users: QuerySet,
    *,
    form_class: type[forms.Form],
    title: str,
    apply: Callable[[User, dict], object],
    done: str,
) -> TemplateResponse | None:
    """An action with an intermediate form: show it, then apply it to every selected user."""
    initial = form_class.initial_for(users) if hasattr(form_class, "initial_for") else {}
    form = form_class(request.POST if "apply" in request.POST else None, initial=initial)
    if form.is_valid():
        for user in users:
            apply(user, form.cleaned_data)
        modeladmin.message_user(request, done.format(n=len(users), **form.cleaned_data))
        return None  # back to the user list
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "users": users,
        "action": request.POST.get("action", ""),
        "select_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/quotas/user_action_form.html", context)


@admin.action(description="Change plan…", permissions=["change"])
def change_plan(
    modeladmin: admin.ModelAdmin, request: HttpRequest, users: QuerySet
) -> TemplateResponse | None:
    return _with_form(
        modeladmin,
        request,
        users,
        form_class=ChangePlanForm,
        title="Change plan",
        apply=lambda user, data: services.change_plan(user, data["plan"]),
        done="{n} user(s) moved to the {plan} plan (their overrides stay).",
    )


@admin.action(description="Grant extra analyses (this month)…", permissions=["change"])
def grant_extra_analyses(
    modeladmin: admin.ModelAdmin, request: HttpRequest, users: QuerySet
) -> TemplateResponse | None:
    return _with_form(
        modeladmin,
        request,
        users,
        form_class=GrantExtraForm,
        title="Grant extra analyses for this month",
        apply=lambda user, data: services.grant_extra_analyses(user, data["amount"]),
        done="{amount} extra analyses granted to {n} user(s) for this month.",
    )


@admin.action(description="Reset this month's usage", permissions=["change"])
def reset_usage(modeladmin: admin.ModelAdmin, request: HttpRequest, users: QuerySet) -> None:
    for user in users:
        services.reset_usage(user)
    modeladmin.message_user(
        request,
        f"Usage reset for {len(users)} user(s); the ledger keeps the earlier rows.",
        messages.SUCCESS,
    )


USER_ACTIONS = (change_plan, grant_extra_analyses, reset_usage)

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


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "monthly_analyses",
        "monthly_video_seconds",
        "max_file_bytes",
        "max_duration_s",
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


def usage_text(user: User) -> str:
    s = services.usage_summary(user)
    return (
        f"{s.used.analyses} of {s.limits.analyses} analyses, "
        f"{s.used.video_seconds:.0f} of {s.limits.video_seconds} s of video used "
        f"(plan {s.plan}); resets {s.resets_at:%Y-%m-%d %H:%M} UTC"
    )


class UserQuotaInline(admin.StackedInline):
    """Plan, overrides (empty = the plan's value) and this period's usage, on the user page."""

    model = UserQuota
    can_delete = False
    max_num = 1
    fields = (
        "plan",
        "usage_this_period",
        ("monthly_analyses", "monthly_video_seconds"),
        ("max_file_bytes", "max_duration_s", "requests_per_minute"),
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
    form = form_class(request.POST if "apply" in request.POST else None)
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

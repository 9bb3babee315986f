from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiKey, User
from quotas import services as quotas
from quotas.admin import USER_ACTIONS, UserQuotaInline, usage_short


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = (
        "email",
        "first_name",
        "last_name",
        "plan",
        "usage",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("quota__plan", *BaseUserAdmin.list_filter)
    list_select_related = ("quota__plan",)
    search_fields = ("email", "first_name", "last_name")
    actions = USER_ACTIONS
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(ordering="quota__plan__name")
    def plan(self, user: User) -> str:
        quota = getattr(user, "quota", None)
        return quota.plan.name if quota else "—"

    @admin.display(description="Used this month")
    def usage(self, user: User) -> str:
        quota = getattr(user, "quota", None)
        return usage_short(quota) if quota else "—"

    def get_inlines(self, request, obj):
        # None on the add page: the sign-up signal creates the quota row when the user is saved.
        return [UserQuotaInline] if obj is not None else []

    def get_object(self, request, object_id, from_field=None):
        user = super().get_object(request, object_id, from_field)
        if user is not None:
            quotas.get_quota(user)  # users from before quotas get their row on first view
        return user


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__email")
    readonly_fields = ("prefix", "key_hash", "created", "last_used_at")

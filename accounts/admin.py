from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from accounts.forms import UsernameField
from accounts.models import AuditLog, User
from accounts.services import user_active_changed, user_insert


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger, payments, events: records of what happened, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "username")
        field_classes = {"username": UsernameField}


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"username": UsernameField}
        help_texts = {
            "rate_tier": _("Premium is bought and renewed by the user; set Enterprise here."),
            "api_limit_per_minute": _("Enterprise only; empty means unlimited."),
        }

    def clean(self):
        data = super().clean()
        if data.get("api_limit_per_minute") is not None and data.get("rate_tier") != User.Tier.ENTERPRISE:
            self.add_error("api_limit_per_minute", _("Only an enterprise tier has an admin-set limit."))
        return data


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    list_display = ("email", "username", "full_name", "is_active", "is_staff", "is_superuser", "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser", "rate_tier", "created_at")
    search_fields = ("email", "username", "full_name", "referral_code")
    ordering = ("-created_at",)
    readonly_fields = ("id", "referral_code", "created_at", "updated_at", "last_login", "password_changed_at")
    raw_id_fields = ("referred_by",)
    fieldsets = (
        (None, {"fields": ("id", "email", "username", "password")}),
        (_("Personal info"), {"fields": ("full_name",)}),
        (_("Referrals"), {"fields": ("referral_code", "referred_by")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("API"), {"fields": ("rate_tier", "api_limit_per_minute")}),
        (_("Dates"), {"fields": ("last_login", "password_changed_at", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "username", "usable_password", "password1", "password2")}),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            user_insert(obj)
            return
        super().save_model(request, obj, form, change)
        if "is_active" in form.changed_data:
            user_active_changed(user_id=obj.pk, is_active=obj.is_active)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "user", "resource_type", "resource_id", "ip_address")
    list_filter = ("action", "resource_type", "created_at")
    search_fields = ("action", "resource_id", "user__email", "user__username", "ip_address")
    date_hierarchy = "created_at"
    list_select_related = ("user",)

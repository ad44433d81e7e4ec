"""Tokens (read-only, force revoke), gifts (read-only, cancel) and bundles (through the services) in Django admin.

A token's secret never appears here, only its prefix: admins do not need live
tokens, and the admin's HTML ends up in browser caches and screenshots.
"""

from datetime import datetime

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from access import gifts, services
from access.forms import BundleAdminForm
from access.models import AccessToken, Bundle, Gift, TierPeriod, TierSubscription, TokenRenewal, TokenStatus
from accounts.admin import ReadOnlyAdmin
from accounts.models import User
from accounts.services import actor_of
from events.services import event_record
from wallet.admin import WalletUserAdmin


def _unexpired(now: datetime) -> Q:
    return Q(expires_at__gt=now)


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return TokenStatus.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == TokenStatus.READY:
            return queryset.filter(revoked_at__isnull=True, activated_at__isnull=True)
        if value == TokenStatus.REVOKED:
            return queryset.filter(revoked_at__isnull=False)
        if value in (TokenStatus.ACTIVE, TokenStatus.EXPIRED):
            started = queryset.filter(revoked_at__isnull=True, activated_at__isnull=False)
            unexpired = _unexpired(timezone.now())
            return started.filter(unexpired) if value == TokenStatus.ACTIVE else started.exclude(unexpired)
        return queryset


class AutoRenewingFilter(admin.SimpleListFilter):
    """Tokens the renewal task will charge (switched on, owner's master switch on, running or not yet used)."""

    title = _("auto-renewing")
    parameter_name = "auto_renewing"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        renewing = Q(auto_renew=True, user__auto_renew_enabled=True, revoked_at__isnull=True) & (
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        if self.value() == "yes":
            return queryset.filter(renewing)
        if self.value() == "no":
            return queryset.exclude(renewing)
        return queryset


class TokenRenewalInline(admin.TabularInline):
    """The periods paid by auto-renewal (period 1 is the purchase); read-only, written only by the renewal task."""

    model = TokenRenewal
    fields = ("period", "price", "transaction", "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = _("Renewals")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _status_label(token: AccessToken) -> str:
    return TokenStatus(token.status).label


@admin.register(AccessToken)
class AccessTokenAdmin(ReadOnlyAdmin):
    """Read-only; the one change an admin makes is a force revoke (no refund), as an action."""

    list_display = (
        "user",
        "secret_prefix",
        "scope",
        "duration_hours",
        "cost_znc",
        "status",
        "created_at",
        "activated_at",
        "revoked_at",
    )
    list_filter = (StatusFilter, AutoRenewingFilter, "scope", "bundle")
    inlines = [TokenRenewalInline]
    search_fields = ("user__email", "user__username", "secret_prefix", "id")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    # Listed explicitly: never the encrypted secret or its digest.
    fields = (
        "id",
        "user",
        "secret_prefix",
        "status",
        "scope",
        "duration_hours",
        "cost_znc",
        "bundle",
        "purchase",
        "created_at",
        "activated_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
        "refund",
        "auto_renew",
        "renewal_failed_at",
    )
    readonly_fields = fields
    actions = ["force_revoke"]

    @admin.display(description=_("status"))
    def status(self, obj: AccessToken) -> str:
        return _status_label(obj)

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("access.change_accesstoken")

    @admin.action(description=_("Force revoke (no refund)"), permissions=["revoke"])
    def force_revoke(self, request, queryset):
        actor = actor_of(request)
        # Already revoked ones are left alone: revoking again would only add a misleading audit entry.
        token_ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for token_id in token_ids:
            services.token_force_revoke(token_id=token_id, actor=actor)
        skipped = queryset.count() - len(token_ids)
        message = ngettext(
            "%(count)d token revoked, no refund.", "%(count)d tokens revoked, no refund.", len(token_ids)
        ) % {"count": len(token_ids)}
        if skipped:
            message += " " + ngettext("%(count)d was already revoked.", "%(count)d were already revoked.", skipped) % {
                "count": skipped
            }
        self.message_user(request, message, messages.SUCCESS)


@admin.register(Bundle)
class BundleAdmin(admin.ModelAdmin):
    """Saves go through services.bundle_save (validation, audit); delete takes the bundle off sale."""

    form = BundleAdminForm
    list_display = (
        "name",
        "name_ru",
        "token_count",
        "duration_hours",
        "scope",
        "discount_percent",
        "base_price",
        "total_price",
        "savings",
        "is_active",
    )
    list_editable = ("is_active",)
    list_filter = ("is_active", "scope", "duration_hours")
    search_fields = ("name", "name_ru", "description", "description_ru")
    readonly_fields = ("id", "savings", "price_per_token", "created_at", "updated_at")
    ordering = ("total_price", "name")
    actions = ["take_off_sale"]

    # An add form with errors shows these for a half-filled bundle: no prices or no tokens yet.
    @admin.display(description=_("savings, ZNC"))
    def savings(self, obj: Bundle):
        return obj.savings if obj.base_price is not None and obj.total_price is not None else "—"

    @admin.display(description=_("price per token, ZNC"))
    def price_per_token(self, obj: Bundle):
        return obj.price_per_token if obj.total_price is not None and obj.token_count else "—"

    def save_model(self, request, obj, form, change):
        actor = actor_of(request)
        if change:
            # The form already wrote its values into ``obj``; the service diffs against the stored row.
            changes = {field: getattr(obj, field) for field in form.changed_data if field in services.BUNDLE_FIELDS}
            saved = services.bundle_save(bundle=Bundle.objects.get(pk=obj.pk), changes=changes, actor=actor)
        else:
            changes = {field: getattr(obj, field) for field in services.BUNDLE_FIELDS}
            saved = services.bundle_save(bundle=None, changes=changes, actor=actor)
        # The admin goes on with ``obj`` (log entry, message, redirect): make it the saved row.
        vars(obj).update(vars(saved))

    def delete_model(self, request, obj):
        services.bundle_deactivate(bundle=obj, actor=actor_of(request))

    def delete_queryset(self, request, queryset):
        actor = actor_of(request)
        for bundle in queryset:
            services.bundle_deactivate(bundle=bundle, actor=actor)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django's bulk delete would say "deleted"; this action says what happens.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Take off sale (soft delete)"), permissions=["delete"])
    def take_off_sale(self, request, queryset):
        bundles = list(queryset.filter(is_active=True))
        self.delete_queryset(request, queryset.filter(pk__in=[b.pk for b in bundles]))
        self.message_user(
            request,
            ngettext("%(count)d bundle taken off sale.", "%(count)d bundles taken off sale.", len(bundles))
            % {"count": len(bundles)},
            messages.SUCCESS,
        )

    def response_delete(self, request, obj_display, obj_id):
        response = super().response_delete(request, obj_display, obj_id)
        # Replace Django's "deleted successfully": the row stays, off sale.
        list(messages.get_messages(request))
        self.message_user(
            request,
            gettext("“%(name)s” is off sale now. Tokens already sold keep working.") % {"name": obj_display},
            messages.SUCCESS,
        )
        return response


@admin.register(Gift)
class GiftAdmin(ReadOnlyAdmin):
    """Read-only (the claim code is never stored, only its digest, which is not shown); cancel is an action."""

    list_display = (
        "id",
        "sender",
        "recipient",
        "recipient_email",
        "status",
        "token_prefix",
        "created_at",
        "expires_at",
        "finished_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("sender__username", "sender__email", "recipient__username", "recipient__email", "recipient_email")
    list_select_related = ("sender", "recipient", "token")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "token",
        "token_prefix",
        "sender",
        "recipient",
        "recipient_email",
        "message",
        "created_at",
        "expires_at",
        "finished_at",
        "emailed_at",
    )
    readonly_fields = fields
    actions = ["cancel_pending"]

    @admin.display(description=_("token"), ordering="token__secret_prefix")
    def token_prefix(self, obj: Gift) -> str:
        return f"{obj.token.secret_prefix}…"

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("access.change_gift")

    @admin.action(description=_("Cancel selected pending gifts"), permissions=["cancel"])
    def cancel_pending(self, request, queryset):
        actor = actor_of(request)
        cancelled = skipped = 0
        for gift_id in queryset.values_list("pk", flat=True):
            try:
                gifts.gift_admin_cancel(gift_id=gift_id, actor=actor)
            except gifts.GiftUnavailable:  # claimed, declined, cancelled or expired (maybe a moment ago)
                skipped += 1
            else:
                cancelled += 1
        if cancelled:
            self.message_user(
                request,
                ngettext(
                    "%(count)d gift cancelled: its token is back with its sender.",
                    "%(count)d gifts cancelled: their tokens are back with their senders.",
                    cancelled,
                )
                % {"count": cancelled},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d gift was not pending and was left alone.",
                    "%(count)d gifts were not pending and were left alone.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


class AccessTokenInline(admin.TabularInline):
    model = AccessToken
    fk_name = "user"
    fields = ("secret_prefix", "scope", "duration_hours", "status", "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("Access tokens")

    @admin.display(description=_("status"))
    def status(self, obj: AccessToken) -> str:
        return _status_label(obj)

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at")


class TierPeriodInline(admin.TabularInline):
    """The user's paid Premium periods; read-only, written only by access.tiers."""

    model = TierPeriod
    fk_name = "user"
    fields = ("period", "starts_at", "ends_at", "price", "transaction")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = _("Premium periods")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TierSubscription)
class TierSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("user", "paid_until", "renews", "renewal_failed_at", "updated_at")
    list_filter = ("renews",)
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)


@admin.register(TierPeriod)
class TierPeriodAdmin(ReadOnlyAdmin):
    list_display = ("user", "period", "starts_at", "ends_at", "price", "created_at")
    search_fields = ("user__email", "user__username")
    list_select_related = ("user",)


class AccessUserAdmin(WalletUserAdmin):
    """The wallet's user admin plus the user's tokens and Premium periods."""

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), AccessTokenInline, TierPeriodInline] if obj is not None else []

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The admin is the only way to enterprise (and may take anyone off premium): integrators hear of it too.
        if change and "rate_tier" in form.changed_data:
            event_record(
                type="tier.changed",
                user=obj.pk,
                data={"from": form.initial.get("rate_tier"), "to": obj.rate_tier, "reason": "admin"},
            )


admin.site.unregister(User)
admin.site.register(User, AccessUserAdmin)

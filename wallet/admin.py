from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin, UserAdmin
from accounts.models import User
from accounts.services import actor_of
from wallet import services
from wallet.forms import AdjustBalanceForm
from wallet.models import CurrencyRate, Payment, Transaction
from zenzefi.errors import DomainError


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "amount", "balance_after", "description", "payment_id")
    list_filter = ("kind", "created_at")
    search_fields = ("user__email", "user__username", "description", "payment_id", "id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "amount_znc",
        "currency",
        "rate",
        "amount_money",
        "amount_minor",
        "provider",
        "status",
    )
    # Status includes "mismatch": the provider reported another amount or currency, nothing was credited.
    list_filter = ("status", "currency", "provider", "created_at")
    search_fields = ("user__email", "user__username", "provider_payment_id", "id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


class CurrencyRateForm(forms.ModelForm):
    class Meta:
        model = CurrencyRate
        fields = ("currency", "znc_price", "enabled")

    def clean_znc_price(self):
        price = self.cleaned_data["znc_price"]
        if price is not None and price <= 0:
            raise forms.ValidationError(_("The price must be greater than 0."))
        return price


@admin.register(CurrencyRate)
class CurrencyRateAdmin(admin.ModelAdmin):
    """The price of 1 ZNC per top-up currency. Superusers only; every save goes through currency_rate_set (audited)."""

    form = CurrencyRateForm
    list_display = ("currency", "znc_price", "enabled", "updated_at", "updated_by")
    list_select_related = ("updated_by",)
    readonly_fields = ("currency", "updated_at", "updated_by")
    fields = ("currency", "znc_price", "enabled", "updated_at", "updated_by")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    # The three currencies' rows come with the migration; a rate is switched off, never deleted.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            saved = services.currency_rate_set(
                currency=obj.currency,
                znc_price=form.cleaned_data["znc_price"],
                enabled=form.cleaned_data["enabled"],
                actor=actor_of(request),
            )
        except DomainError as exc:
            # The form checked the same rules; this is a last word, not a 500.
            self.message_user(request, gettext(exc.detail), messages.ERROR)
            return
        obj.refresh_from_db()
        obj.updated_by = saved.updated_by


class TransactionInline(admin.TabularInline):
    model = Transaction
    fields = ("created_at", "kind", "amount", "balance_after", "description")
    readonly_fields = fields
    ordering = ("-seq",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("Latest transactions")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-seq")


class WalletUserAdmin(UserAdmin):
    """The user admin with the wallet: a read-only balance and an "adjust balance" page."""

    list_display = (*UserAdmin.list_display[:3], "balance", *UserAdmin.list_display[3:])
    readonly_fields = (*UserAdmin.readonly_fields, "balance")
    fieldsets = (*UserAdmin.fieldsets, (_("Wallet"), {"fields": ("balance",)}))
    actions = ["adjust_balance"]
    change_form_template = "admin/wallet/user_change_form.html"

    def get_inlines(self, request, obj):
        return [TransactionInline] if obj is not None else []

    def get_urls(self):
        adjust = path(
            "<uuid:user_id>/adjust-balance/",
            self.admin_site.admin_view(self.adjust_balance_view),
            name="accounts_user_adjust_balance",
        )
        return [adjust, *super().get_urls()]

    @admin.action(description=_("Adjust balance"))
    def adjust_balance(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Choose exactly one user to adjust."), messages.WARNING)
            return None
        return redirect("admin:accounts_user_adjust_balance", user_id=queryset.get().pk)

    def adjust_balance_view(self, request, user_id):
        if not self.has_change_permission(request):
            return redirect("admin:index")
        user = get_object_or_404(User, pk=user_id)
        form = AdjustBalanceForm(request.POST or None, user=user)
        if request.method == "POST" and form.is_valid():
            try:
                entry = services.balance_adjust(
                    user=user,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    actor=actor_of(request),
                )
            except DomainError as exc:
                form.add_error("amount", gettext(exc.detail))
            else:
                self.message_user(
                    request,
                    gettext("Balance of %(user)s is now %(balance)s ZNC.")
                    % {"user": user, "balance": entry.balance_after},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Adjust balance of %(user)s") % {"user": user},
            "subject": user,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/wallet/adjust_balance.html", context)


admin.site.unregister(User)
admin.site.register(User, WalletUserAdmin)

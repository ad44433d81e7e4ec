from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin, UserAdmin
from accounts.models import User
from wallet import services
from wallet.forms import AdjustBalanceForm
from wallet.models import Payment, Transaction
from zenzefi.api import actor_of
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
    list_display = ("created_at", "user", "amount_znc", "amount_money", "currency", "provider", "status")
    list_filter = ("status", "provider", "created_at")
    search_fields = ("user__email", "user__username", "provider_payment_id", "id")
    date_hierarchy = "created_at"
    list_select_related = ("user",)


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

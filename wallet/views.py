from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.services import actor_of, preferred_currency_set
from wallet import currencies, services
from wallet.currencies import CurrencyUnavailable
from wallet.formatting import money
from wallet.forms import PRESETS, HistoryFilterForm, TopUpForm
from wallet.models import Payment, Transaction
from zenzefi.errors import DomainError
from zenzefi.net import request_ip

PAYMENT_MESSAGES = {
    Payment.Status.PENDING: _("Waiting for the payment to be confirmed…"),
    Payment.Status.SUCCEEDED: _("Payment received. Your balance has been topped up."),
    Payment.Status.CANCELED: _("The payment was canceled. Nothing was charged."),
    Payment.Status.FAILED: _("The payment failed. Nothing was charged."),
    Payment.Status.MISMATCH: _(
        "Amount mismatch — contact support. The provider reported another amount or currency; nothing was credited."
    ),
}
HISTORY_PAYMENTS = 10
# What a currency is called on the picker (the code and symbol come from the formatted amounts).
CURRENCY_NAMES = {"RUB": _("Russian rouble"), "USD": _("US dollar"), "EUR": _("Euro")}


def _picker(rates: list, chosen: str) -> list[dict]:
    """The currencies the user can pay in now, for the picker."""
    return [
        {
            "code": rate.currency,
            "name": CURRENCY_NAMES.get(rate.currency, rate.currency),
            "chosen": rate.currency == chosen,
        }
        for rate in rates
    ]


def _script_rates(rates: list) -> dict:
    """What static/js/topup.js needs to price any amount like currencies.quote: the exact price and the minor unit."""
    return {
        rate.currency: {
            "price": str(rate.znc_price),
            "minor": currencies.MINOR_UNITS[rate.currency],
            "rate_label": money(rate.znc_price, rate.currency, exact=True),
        }
        for rate in rates
    }


@login_required
def wallet(request):
    rates = currencies.available()
    codes = [rate.currency for rate in rates]
    preferred = request.user.preferred_currency
    default = preferred if preferred in codes else ("RUB" if "RUB" in codes or not codes else codes[0])
    form = TopUpForm(request.POST or None, initial={"amount": PRESETS[1], "currency": default})
    if request.method == "POST" and form.is_valid():
        currency = form.cleaned_data["currency"]
        try:
            payment = services.payment_create(
                user=request.user,
                amount_znc=form.cleaned_data["amount"],
                return_url=None,
                actor=actor_of(request),
                currency=currency,
            )
        except CurrencyUnavailable as exc:
            messages.error(request, exc.message())
        except DomainError as exc:
            messages.error(request, gettext(exc.detail))
        else:
            # Paying in a currency makes it the one the wallet page offers first next time.
            preferred_currency_set(user=request.user, currency=payment.currency, ip=request_ip(request))
            # The user pays on the provider's page; it sends them back to our return page. Our own
            # (mock) checkout stays on the host the user is on, so the session cookie goes along.
            if payment.provider == "mock":
                return redirect("wallet:checkout", payment_id=payment.pk)
            return redirect(payment.confirmation_url)
    # Re-shown after a refused POST: the currency asked for if it is still offered, the amount if it was valid.
    asked = (form.data.get("currency") or "").upper() if form.is_bound else default
    chosen = asked if asked in codes else default
    rate = next((r for r in rates if r.currency == chosen), None)
    amount = (form.cleaned_data.get("amount") if form.is_valid() else None) if form.is_bound else PRESETS[1]
    recent = Transaction.objects.filter(user=request.user).select_related("payment").order_by("-created_at", "-seq")[:5]
    pending = Payment.objects.filter(user=request.user, status=Payment.Status.PENDING).order_by("-created_at")[:3]
    return render(
        request,
        "wallet/wallet.html",
        {
            "form": form,
            "currencies": _picker(rates, chosen),
            "chosen": rate,
            "presets": currencies.presets(rate) if rate else [],
            "total": currencies.quote(rate, amount, rate.currency) if rate and amount else None,
            "script_rates": _script_rates(rates),
            "recent": recent,
            "pending": pending,
        },
    )


@login_required
def history(request):
    form = HistoryFilterForm(request.GET or None)
    rows = Transaction.objects.filter(user=request.user).select_related("payment").order_by("-created_at", "-seq")
    if form.is_valid() and form.cleaned_data["type"]:
        rows = rows.filter(kind=form.cleaned_data["type"])
    page = Paginator(rows, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    # Every top-up, whatever became of it: a mismatched or failed one has no ledger row above.
    payments = Payment.objects.filter(user=request.user).order_by("-created_at")[:HISTORY_PAYMENTS]
    return render(
        request,
        "wallet/history.html",
        {"form": form, "page": page, "query": query.urlencode(), "payments": payments},
    )


def _own_payment(request, payment_id) -> Payment:
    return get_object_or_404(Payment, pk=payment_id, user=request.user)


@login_required
def payment_status(request, payment_id):
    """Where the provider sends the user back; refreshes itself while the payment is pending."""
    payment = _own_payment(request, payment_id)
    return render(
        request, "wallet/payment_status.html", {"payment": payment, "message": PAYMENT_MESSAGES[payment.status]}
    )


@login_required
def checkout(request, payment_id):
    """The mock provider's payment page."""
    if not settings.ENABLE_MOCK_PAYMENTS:
        raise Http404
    payment = _own_payment(request, payment_id)
    if payment.provider != "mock":
        raise Http404
    return render(request, "wallet/checkout.html", {"payment": payment})


@login_required
@require_POST
def checkout_submit(request, payment_id):
    if not settings.ENABLE_MOCK_PAYMENTS:
        raise Http404
    payment = _own_payment(request, payment_id)
    if payment.provider != "mock":
        raise Http404
    if request.POST.get("action") == "pay":
        services.payment_capture(payment_id=payment.pk, actor=actor_of(request), source="mock-checkout")
    else:
        services.payment_cancel(payment_id=payment.pk, actor=actor_of(request), source="mock-checkout")
    return redirect(payment.return_url or reverse("wallet:payment", args=[payment.pk]))

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

from wallet import services
from wallet.forms import PRESETS, HistoryFilterForm, TopUpForm
from wallet.models import Payment, Transaction
from zenzefi.api import actor_of
from zenzefi.errors import DomainError

PAYMENT_MESSAGES = {
    Payment.Status.PENDING: _("Waiting for the payment to be confirmed…"),
    Payment.Status.SUCCEEDED: _("Payment received. Your balance has been topped up."),
    Payment.Status.CANCELED: _("The payment was canceled. Nothing was charged."),
    Payment.Status.FAILED: _("The payment failed. Nothing was charged."),
}


@login_required
def wallet(request):
    form = TopUpForm(request.POST or None, initial={"amount": PRESETS[1]})
    if request.method == "POST" and form.is_valid():
        try:
            payment = services.payment_create(
                user=request.user,
                amount_znc=form.cleaned_data["amount"],
                return_url=None,
                actor=actor_of(request),
            )
        except DomainError as exc:
            messages.error(request, gettext(exc.detail))
        else:
            # The user pays on the provider's page; it sends them back to our return page. Our own
            # (mock) checkout stays on the host the user is on, so the session cookie goes along.
            if payment.provider == "mock":
                return redirect("wallet:checkout", payment_id=payment.pk)
            return redirect(payment.confirmation_url)
    recent = Transaction.objects.filter(user=request.user).order_by("-created_at", "-seq")[:5]
    pending = Payment.objects.filter(user=request.user, status=Payment.Status.PENDING).order_by("-created_at")[:3]
    return render(
        request,
        "wallet/wallet.html",
        {
            "form": form,
            "presets": [(p, p * settings.ZNC_TO_RUB_RATE) for p in PRESETS],
            "rate": settings.ZNC_TO_RUB_RATE,
            "recent": recent,
            "pending": pending,
        },
    )


@login_required
def history(request):
    form = HistoryFilterForm(request.GET or None)
    rows = Transaction.objects.filter(user=request.user).order_by("-created_at", "-seq")
    if form.is_valid() and form.cleaned_data["type"]:
        rows = rows.filter(kind=form.cleaned_data["type"])
    page = Paginator(rows, 20).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "wallet/history.html", {"form": form, "page": page, "query": query.urlencode()})


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

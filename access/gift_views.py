"""Portal pages of gifts: giving a token, the list of sent and received ones, cancelling, and the claim page.

Thin: every change goes through ``access.gifts``. The claim link is shown once, as the answer to the POST
that made it (``views.gift_link_page``): only its digest is stored, so no page can show it again.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from access import gifts
from access.forms import GiftForm
from access.models import Gift, GiftStatus, Scope, TokenStatus
from access.prices import duration_label
from access.selectors import gifts_of
from access.views import SCOPE_HELP, _now_iso, _own_token, gift_error_show, gift_link_page, pending_gift_of
from accounts.services import actor_of
from zenzefi.errors import DomainError, NotFound, RateLimited
from zenzefi.net import request_ip

GIFTS_PER_PAGE = 25
# The model's labels share "Pending" with payments ("awaiting payment" in Russian): a gift's own words here.
STATUS_LABELS = {
    GiftStatus.PENDING: pgettext_lazy("gift status", "Pending"),
    GiftStatus.CLAIMED: pgettext_lazy("gift status", "Claimed"),
    GiftStatus.DECLINED: pgettext_lazy("gift status", "Declined"),
    GiftStatus.CANCELLED: pgettext_lazy("gift status", "Cancelled"),
    GiftStatus.EXPIRED: pgettext_lazy("gift status", "Expired"),
}

# What a claim page says about a link that no longer works: (heading, explanation).
UNAVAILABLE = {
    GiftStatus.CLAIMED: (
        _("This gift has already been claimed"),
        _("A gift link works once, and this one has been used."),
    ),
    GiftStatus.DECLINED: (_("This gift was declined"), _("The token went back to its sender.")),
    GiftStatus.CANCELLED: (
        _("This gift was cancelled by its sender"),
        _("The sender took the token back. Ask them for a new link if it was meant for you."),
    ),
    GiftStatus.EXPIRED: (
        _("This gift link has expired"),
        _("It was not claimed in time, so the token went back to its sender."),
    ),
}


@login_required
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def give(request, token_id):
    """Offer an unused token as a gift; the answer to the POST is the one page that shows the link."""
    token = _own_token(request, token_id)
    refusal = _refusal(token)
    if refusal is not None:
        messages.error(request, refusal)
        return redirect("access:token", token_id=token.pk)
    form = GiftForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            gift, code = gifts.gift_send(
                user=request.user,
                token_id=token.pk,
                recipient_email=form.cleaned_data["recipient_email"],
                message=form.cleaned_data["message"],
                actor=actor_of(request),
            )
        except NotFound as exc:
            raise Http404 from exc
        except DomainError as exc:
            gift_error_show(request, exc)
            return redirect("access:token", token_id=token.pk)
        return gift_link_page(request, gift, code)
    context = {
        "token": token,
        "form": form,
        "duration": duration_label(token.duration_hours),
        "claim_days": settings.GIFT_CLAIM_DAYS,
    }
    return render(request, "access/gift_form.html", context)


def _refusal(token) -> str | None:
    """Why this token cannot be offered now (the service refuses the same, with the same words)."""
    if token.revoked_at is not None:
        return gettext("A revoked token cannot be given as a gift")
    if token.status_at(timezone.now()) != TokenStatus.READY:
        return gettext("Only a token that has never been used can be given as a gift")
    if pending_gift_of(token) is not None:
        return gettext("This token is already a pending gift")
    return None


@login_required
@require_safe
def gifts_list(request):
    show = "received" if request.GET.get("show") == "received" else "sent"
    rows = gifts_of(request.user, direction=show)
    page = Paginator(rows, GIFTS_PER_PAGE).get_page(request.GET.get("page"))
    for gift in page.object_list:
        gift.duration_text = duration_label(gift.token.duration_hours)
        gift.status_label = STATUS_LABELS[gift.status]
        gift.token_is_mine = gift.token.user_id == request.user.pk
    return render(request, "access/gifts.html", {"page": page, "show": show})


@login_required
@require_POST
def cancel(request, gift_id):
    try:
        gifts.gift_cancel(user=request.user, gift_id=gift_id, actor=actor_of(request))
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:  # claimed, declined or expired meanwhile
        gift_error_show(request, exc)
        return redirect("gifts:list")
    messages.success(request, gettext("The gift was cancelled: the token is yours again."))
    return redirect("gifts:list")


def _unavailable_page(request, gift: Gift):
    status = gift.status if gift.status != GiftStatus.PENDING else GiftStatus.EXPIRED  # pending past its time
    title, text = UNAVAILABLE[status]
    context = {"title": title, "text": text, "status": status, "is_sender": gift.sender_id == request.user.pk}
    return render(request, "access/gift_unavailable.html", context, status=410)


@never_cache  # a live claim link and the visitor's CSRF token
@require_http_methods(["GET", "HEAD", "POST"])
def claim(request, code):
    """The recipient's page: see the gift, then log in or register, then accept or decline. No login to look."""
    try:
        gifts.claim_rate_check(request_ip(request))
    except RateLimited as exc:
        context = {"retry_after": exc.retry_after, "message": gettext(exc.detail)}
        response = render(request, "429.html", context, status=429)
        for name, value in exc.headers().items():
            response[name] = value
        return response
    try:
        gift = gifts.gift_by_code(code)
    except gifts.GiftCodeInvalid:
        context = {"title": gettext("This gift link is not valid"), "text": "", "status": "invalid"}
        return render(request, "access/gift_unavailable.html", context, status=404)
    path = gifts.claim_path(code)
    if gift.status != GiftStatus.PENDING or timezone.now() >= gift.expires_at:
        return _unavailable_page(request, gift)
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(reverse("accounts:login") + "?" + urlencode({"next": path}))
        return _decide(request, code, accept=request.POST.get("decision") == "accept")
    token = gift.token
    context = {
        "gift": gift,
        "sender": gift.sender,
        "duration": duration_label(token.duration_hours),
        "scope": Scope(token.scope),
        "scope_help": SCOPE_HELP[token.scope],
        "is_sender": request.user.is_authenticated and request.user.pk == gift.sender_id,
        "register_url": reverse("accounts:register")
        + "?"
        + urlencode({"ref": gift.sender.referral_code, "next": path}),
        "login_url": reverse("accounts:login") + "?" + urlencode({"next": path}),
        "now": _now_iso(),
    }
    return render(request, "access/gift_claim.html", context)


def _decide(request, code: str, *, accept: bool):
    try:
        gift = gifts.gift_claim(user=request.user, code=code, accept=accept, actor=actor_of(request))
    except gifts.GiftUnavailable:  # claimed, cancelled or expired between the page and the click
        return _unavailable_page(request, gifts.gift_by_code(code))
    except DomainError as exc:
        gift_error_show(request, exc)
        return redirect(gifts.claim_path(code))
    token = gift.token
    if not accept:
        messages.info(
            request,
            gettext("You declined the gift. The token went back to %(sender)s.") % {"sender": gift.sender.username},
        )
        return redirect(reverse("gifts:list") + "?show=received")
    messages.success(
        request,
        gettext("The gift is yours: %(duration)s, %(scope)s from %(sender)s. Its time starts at first use.")
        % {
            "duration": duration_label(token.duration_hours),
            "scope": Scope(token.scope).label,
            "sender": gift.sender.username,
        },
    )
    return redirect("access:token", token_id=token.pk)

"""Portal pages: buy access (tokens and bundles), your tokens, revoke.

Thin: every purchase and revoke goes through ``access.services``; domain errors
become messages on the page.
"""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django.views.decorators.vary import vary_on_headers

from access import gifts, renewal, services
from access.forms import AutoRenewalSettingsForm, GiftForm, TokenChoiceForm
from access.models import AccessToken, Bundle, Gift, GiftStatus, Scope, TokenStatus
from access.prices import duration_label, price_table, rub_rate, token_price
from access.selectors import tokens_shown, usable_tokens
from accounts.services import actor_of
from wallet.errors import InsufficientFunds
from zenzefi.errors import DomainError, NotFound

SCOPE_HELP = {
    Scope.FULL: _("Every page of Zenzefi."),
    Scope.CERTIFICATES_ONLY: _("Only the certificate pages: search, details, import, export and updates."),
}
TOKENS_PER_PAGE = 25
VERSION = "1.0.0"  # of the API, in the home page's JSON welcome


def _znc(amount: Decimal) -> str:
    return formats.number_format(amount, decimal_pos=2)


def _show_error(request, exc: DomainError) -> None:
    """A domain error as a message; a shortfall gets the numbers and a way to top up."""
    if isinstance(exc, InsufficientFunds):
        text = gettext("Not enough ZNC: the price is %(price)s ZNC, your balance is %(balance)s ZNC.") % {
            "price": _znc(exc.required),
            "balance": _znc(exc.available),
        }
        messages.error(
            request,
            format_html('{} <a href="{}">{}</a>', text, reverse("wallet:wallet"), gettext("Top up your balance")),
        )
    else:
        # Service messages are English (the API's); pages show them translated.
        messages.error(request, gettext(exc.detail))


def _purchase_context(request, price: Decimal) -> dict:
    balance = request.user.balance
    return {"price": price, "balance": balance, "balance_after": balance - price, "affordable": balance >= price}


def _now_iso() -> str:
    """The server's clock, so the countdown script can correct for a wrong clock on the user's PC."""
    return timezone.now().isoformat(timespec="milliseconds")


def countdown(seconds: int) -> str:
    """``2 d 03:04:05``: the format the page's script keeps counting down in."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days} {pgettext('days, abbreviated', 'd')} {clock}" if days else clock


def _with_state(tokens, now: datetime) -> list[AccessToken]:
    """Tokens with their status, its label and the time left (text), all at one ``now``."""
    tokens = list(tokens)
    for token in tokens:
        token.state = token.status_at(now)
        token.state_label = TokenStatus(token.state).label
        token.left = countdown(token.seconds_left(now)) if token.state == TokenStatus.ACTIVE else None
        token.duration_text = duration_label(token.duration_hours)
        # Milliseconds: what the countdown script parses (Date.parse) in every browser.
        token.expires_iso = token.expires_at.isoformat(timespec="milliseconds") if token.expires_at else ""
        # The switch and "next renewal … for … ZNC": at the list price the renewal will charge.
        token.renewable = token.state in (TokenStatus.READY, TokenStatus.ACTIVE)
        token.next_renewal = token.next_renewal_at
        token.renewal_price = token_price(token.duration_hours)
    return tokens


@login_required
@require_safe
def buy(request):
    prices = price_table()
    scopes = [{"value": scope.value, "label": scope.label, "help": SCOPE_HELP[scope]} for scope in Scope]
    grid = [{**row, "cells": [{"scope": scope["value"], "price": row["price"]} for scope in scopes]} for row in prices]
    bundles = [
        {"bundle": bundle, "duration": duration_label(bundle.duration_hours)}
        for bundle in Bundle.objects.filter(is_active=True).order_by("total_price", "name")
    ]
    context = {"grid": grid, "scopes": scopes, "bundles": bundles, "as_gift": request.GET.get("gift") == "1"}
    return render(request, "access/buy.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_token(request):
    form = TokenChoiceForm(request.GET)
    if not form.is_valid():
        messages.error(request, gettext("This duration or scope is not on sale. Choose one from the table."))
        return redirect("access:buy")
    hours, scope = form.cleaned_data["duration"], form.cleaned_data["scope"]
    gift_form = GiftForm(request.POST if request.POST.get("as_gift") else None, prefix="gift")
    if request.method == "POST" and request.POST.get("as_gift"):
        if gift_form.is_valid():
            try:
                gift, code = gifts.gift_buy(
                    user=request.user,
                    duration_hours=hours,
                    scope=scope,
                    recipient_email=gift_form.cleaned_data["recipient_email"],
                    message=gift_form.cleaned_data["message"],
                    actor=actor_of(request),
                )
            except DomainError as exc:
                gift_error_show(request, exc)
                return redirect(request.get_full_path())
            return gift_link_page(request, gift, code, bought=True)
    elif request.method == "POST":
        try:
            token = services.token_purchase(
                user=request.user, duration_hours=hours, scope=scope, actor=actor_of(request)
            )
        except DomainError as exc:
            _show_error(request, exc)
            return redirect(request.get_full_path())
        messages.success(
            request,
            gettext("Token bought: %(duration)s, %(scope)s, %(price)s ZNC. Its time starts at first use.")
            % {"duration": duration_label(hours), "scope": Scope(scope).label, "price": _znc(token.cost_znc)},
        )
        return redirect("access:tokens")
    context = {
        "kind": "token",
        "duration": duration_label(hours),
        "hours": hours,
        "scope": Scope(scope),
        "scope_help": SCOPE_HELP[scope],
        "gift_form": gift_form,
        "as_gift": request.GET.get("gift") == "1" or gift_form.is_bound,
        **_purchase_context(request, token_price(hours)),
    }
    return render(request, "access/confirm.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_bundle(request, bundle_id):
    bundle = get_object_or_404(Bundle, pk=bundle_id, is_active=True)
    if request.method == "POST":
        try:
            bundle, tokens, _entry = services.bundle_purchase(
                user=request.user, bundle_id=bundle.pk, actor=actor_of(request)
            )
        except DomainError as exc:
            _show_error(request, exc)
            if isinstance(exc, NotFound):  # taken off sale meanwhile
                return redirect("access:buy")
            return redirect("access:confirm_bundle", bundle_id=bundle.pk)
        messages.success(
            request,
            ngettext(
                "%(name)s bought: %(count)d token added, %(price)s ZNC.",
                "%(name)s bought: %(count)d tokens added, %(price)s ZNC.",
                len(tokens),
            )
            % {"name": bundle.display_name, "count": len(tokens), "price": _znc(bundle.total_price)},
        )
        return redirect("access:tokens")
    context = {
        "kind": "bundle",
        "bundle": bundle,
        "duration": duration_label(bundle.duration_hours),
        "scope": Scope(bundle.scope),
        "scope_help": SCOPE_HELP[bundle.scope],
        **_purchase_context(request, bundle.total_price),
    }
    return render(request, "access/confirm.html", context)


@login_required
@never_cache  # the page holds token secrets: keep it out of every cache
@require_safe
def tokens(request):
    show = "usable" if request.GET.get("show") == "usable" else "all"
    pending = Gift.objects.filter(token=OuterRef("pk"), status=GiftStatus.PENDING)
    mine = (
        tokens_shown(AccessToken.objects.filter(user=request.user))
        .select_related("bundle", "gifted_by")
        .annotate(gift_pending=Exists(pending))
    )
    if show == "usable":
        mine = usable_tokens(mine)
    page = Paginator(mine.order_by("-created_at"), TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = _with_state(page.object_list, timezone.now())
    for item in page.object_list:
        item.renewable = item.renewable and not item.gift_pending  # frozen until its recipient decides
    return render(request, "access/tokens.html", {"page": page, "show": show, "now": _now_iso()})


def _own_token(request, token_id) -> AccessToken:
    return get_object_or_404(tokens_shown(AccessToken.objects.all()), pk=token_id, user=request.user)


def pending_gift_of(token: AccessToken) -> Gift | None:
    return Gift.objects.filter(token=token, status=GiftStatus.PENDING).first()


def gift_error_show(request, exc: DomainError) -> None:
    """Like ``_show_error``; the limit messages carry a figure from settings, so they are translated with it."""
    day, pending = settings.GIFT_MAX_PER_DAY, settings.GIFT_MAX_PENDING
    texts = {
        f"You can send at most {day} gifts a day. Try again later.": ngettext(
            "You can send at most %(count)d gift a day. Try again later.",
            "You can send at most %(count)d gifts a day. Try again later.",
            day,
        )
        % {"count": day},
        f"You have {pending} gifts waiting to be claimed. Wait for them to be claimed or cancel some first.": ngettext(
            "You have %(count)d gift waiting to be claimed. Wait for it to be claimed or cancel it first.",
            "You have %(count)d gifts waiting to be claimed. Wait for them to be claimed or cancel some first.",
            pending,
        )
        % {"count": pending},
    }
    if exc.detail in texts:
        messages.error(request, texts[exc.detail])
    else:
        _show_error(request, exc)


def gift_link_page(request, gift: Gift, code: str, *, bought: bool = False):
    """The claim link, shown this once: the answer to the POST that made it (no URL shows it again)."""
    if bought:
        request.user.refresh_from_db(fields=["balance"])  # the header shows the balance after the purchase
    context = {
        "gift": gift,
        "token": gift.token,
        "duration": duration_label(gift.token.duration_hours),
        "link": request.build_absolute_uri(gifts.claim_path(code)),
        "bought": bought,
        "now": _now_iso(),
    }
    response = render(request, "access/gift_link.html", context)
    response["Cache-Control"] = "no-store"  # holds a live claim link
    return response


@login_required
@never_cache  # the page holds token secrets: keep it out of every cache
@require_safe
def token(request, token_id):
    (token,) = _with_state([_own_token(request, token_id)], timezone.now())
    gift = pending_gift_of(token)
    if gift is not None:
        token.renewable = False  # frozen until its recipient decides
    return render(request, "access/token.html", {"token": token, "gift": gift, "now": _now_iso()})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def revoke(request, token_id):
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user, revoked_at__isnull=True)
    if request.method == "POST":
        try:
            _token, refund, _balance = services.token_revoke(
                user=request.user, token_id=token.pk, actor=actor_of(request)
            )
        except NotFound as exc:  # revoked by a second click or tab meanwhile
            raise Http404 from exc
        except DomainError as exc:  # offered as a gift meanwhile
            _show_error(request, exc)
            return redirect("access:revoke", token_id=token.pk)
        messages.success(request, gettext("Token revoked. Refunded %(amount)s ZNC.") % {"amount": _znc(refund)})
        return redirect("access:tokens")
    now = timezone.now()
    (token,) = _with_state([token], now)
    context = {
        "token": token,
        "refund": services.refund_amount(token, now),
        "gift_pending": pending_gift_of(token) is not None,
        "gift_pending_text": gettext(services.TokenGiftPending.default_detail),
        "now": _now_iso(),
    }
    return render(request, "access/revoke.html", context)


def _back(request, default: str):
    """Back to the page the form was on (only a path of this site), else ``default``."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(default)


@login_required
@require_http_methods(["POST"])
def auto_renew(request, token_id):
    """The per-token switch on My tokens and the token page."""
    enabled = request.POST.get("auto_renew") == "on"
    try:
        token = renewal.token_auto_renew_set(
            user=request.user, token_id=token_id, enabled=enabled, actor=actor_of(request)
        )
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        _show_error(request, exc)
        return _back(request, reverse("access:tokens"))
    if enabled:
        text = gettext("Auto-renewal is on for this token.")
        if not request.user.auto_renew_enabled:
            text += " " + gettext("It stays paused until you turn auto-renewal on in your profile.")
        messages.success(request, text)
    else:
        messages.success(request, gettext("Auto-renewal is off for this token. It expires at the end of its time."))
    return _back(request, reverse("access:token", args=[token.pk]))


@login_required
@require_http_methods(["POST"])
def auto_renewal_settings(request):
    """The profile's panel (templates/access/_auto_renewal_settings.html): master switch and reserve."""
    form = AutoRenewalSettingsForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
        return redirect("accounts:profile")
    renewal.auto_renewal_settings_set(
        user=request.user,
        enabled=form.cleaned_data["enabled"],
        min_balance=form.cleaned_data["min_balance"],
        actor=actor_of(request),
    )
    messages.success(request, gettext("Auto-renewal settings saved."))
    return redirect("accounts:profile")


@vary_on_headers("Accept")
def home(request):
    """``/``: the price list for browsers; the reference's JSON welcome for everyone else."""
    # Browsers name text/html in Accept; curl, httpx and monitoring probes send */* or nothing and get the
    # reference's JSON welcome, as does anyone preferring JSON over HTML.
    if request.get_preferred_type(["application/json", "text/html"]) != "text/html":
        return JsonResponse({"message": "Welcome to Zenzefi Backend", "version": VERSION, "docs": "/docs"})
    return render(request, "home.html", {"prices": price_table(), "rub_rate": rub_rate()})

"""The profile's Plan card posts here: upgrade to Premium, switch back to Free, keep Premium renewing."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from access import tiers
from access.templatetags.tiers import requests_per_minute
from access.views import _show_error
from accounts.services import actor_of
from zenzefi.errors import DomainError


@login_required
@require_http_methods(["POST"])
def tier_set(request):
    back = reverse("accounts:profile") + "#plan"
    before = tiers.tier_state(user=request.user)
    try:
        state = tiers.tier_set(user=request.user, tier=request.POST.get("tier", ""), actor=actor_of(request))
    except DomainError as exc:
        _show_error(request, exc)
        return redirect(back)
    until = formats.date_format(timezone.localtime(state.paid_until), "DATETIME_FORMAT") if state.paid_until else ""
    if before.tier != state.tier:
        messages.success(
            request,
            gettext("You are on Premium now: %(limit)s until %(until)s.")
            % {"limit": requests_per_minute(state.limit_per_minute), "until": until},
        )
    elif state.paid_until and state.renews and not before.renews:
        messages.success(request, gettext("Premium renews automatically again. Nothing was charged now."))
    elif state.paid_until and not state.renews and before.renews:
        messages.success(
            request,
            gettext("Premium stays until %(until)s, then your plan goes back to Free. Nothing more is charged.")
            % {"until": until},
        )
    else:
        messages.info(request, gettext("Your plan is unchanged."))
    return redirect(back)

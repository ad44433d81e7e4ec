import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from access.models import AccessToken
from proxy.app import PREFIX

DEVICE_COOKIE_AGE = 365 * 24 * 3600


@login_required
@require_POST
def open_zenzefi(request, token_id):
    """Open Zenzefi in this browser with one of the user's tokens (cookie mode of the proxy).

    The token travels in an HttpOnly cookie scoped to the proxy prefix; the
    browser gets a device id of its own, so the one-device rule applies to it
    like to a desktop client.
    """
    token = get_object_or_404(AccessToken, pk=token_id, user=request.user)
    if not token.is_usable:
        messages.error(request, _("This token can no longer be used."))
        return redirect("access:tokens")
    response = redirect(PREFIX + "/")
    cookie = {"path": PREFIX + "/", "secure": settings.COOKIE_SECURE, "httponly": True, "samesite": "Lax"}
    response.set_cookie(settings.PROXY_COOKIE, token.secret, **cookie)
    device = request.COOKIES.get(settings.PROXY_DEVICE_COOKIE) or f"browser-{secrets.token_hex(10)}"
    response.set_cookie(settings.PROXY_DEVICE_COOKIE, device, max_age=DEVICE_COOKIE_AGE, **cookie)
    return response

"""Refusals as pages, for a person who pressed "Open Zenzefi" in the portal (cookie mode).

The desktop client and API clients keep the reference's JSON ``detail``; a
browser gets the same status code with a short page in the user's language:
what happened, what to do, and the way back to My tokens.
"""

from types import SimpleNamespace

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

KIND_BY_STATUS = {
    400: "device",
    401: "auth",
    403: "scope",
    409: "conflict",
    429: "limited",
    502: "unreachable",
    503: "unavailable",
    504: "timeout",
}

TITLES = {
    "device": _("Zenzefi could not be opened"),
    "auth": _("Your access token is not valid"),
    "scope": _("Not included in your token"),
    "conflict": _("Token in use on another device"),
    "limited": _("Too many requests"),
    "unreachable": _("Zenzefi is not reachable right now"),
    "timeout": _("Zenzefi is not reachable right now"),
    "unavailable": _("Zenzefi Gate is temporarily unavailable"),
}


def language(request) -> str:
    """The portal's language choice (its cookie), else the browser's Accept-Language."""
    shim = SimpleNamespace(
        COOKIES=request.cookies,
        META={"HTTP_ACCEPT_LANGUAGE": request.header("accept-language") or ""},
        path_info="/",
    )
    return translation.get_language_from_request(shim, check_path=False)


def render(request, reject) -> bytes:
    retry_after = next((v.decode() for k, v in reject.headers if k == b"retry-after"), None)
    with translation.override(language(request)):
        return render_to_string(
            "proxy/error.html",
            {
                "status": reject.status,
                "kind": reject.kind,
                "title": TITLES.get(reject.kind, TITLES["device"]),
                "detail": reject.detail,
                "fresh": reject.fresh,
                "retry_after": retry_after,
                "idle_minutes": max(1, round(settings.SESSION_IDLE_TIMEOUT_SECONDS / 60)),
                "tokens_url": reverse("access:tokens"),
                "buy_url": reverse("access:buy"),
                "language": translation.get_language(),
            },
        ).encode()


async def send_error(send, request, reject) -> None:
    page = render(request, reject)
    await send(
        {
            "type": "http.response.start",
            "status": reject.status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(page)).encode()),
                (b"cache-control", b"no-store"),
                *reject.headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": page})

"""Portal pages for integrators: webhook endpoints, their signing secrets and delivery logs.

Thin: every change goes through ``events.services``; domain errors become
messages on the page, someone else's endpoint is a 404. A new or rotated secret
rides in the session across the one redirect that follows and is popped by the
page that shows it, so it is shown once and never again.
"""

import functools
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.services import actor_of
from events import registry, services
from events.forms import EndpointForm
from events.models import DeliveryAttempt, WebhookEndpoint
from zenzefi.errors import DomainError, NotFound

SECRET_SESSION_KEY = "events_secret_once"  # noqa: S105  a session key's name
ATTEMPTS_PER_PAGE = 25
# The reason services.endpoint_update writes when the owner switches an endpoint off.
OWNER_REASON = "disabled by its owner"
# The reasons services write when failures switch an endpoint off, and their translations.
FAILURE_REASONS = [
    (
        re.compile(r"every delivery failed for (\d+) days"),
        lambda n: ngettext("every delivery failed for %(n)d day", "every delivery failed for %(n)d days", n),
    ),
    (
        re.compile(r"(\d+) deliveries in a row failed after all retries"),
        lambda n: ngettext(
            "%(n)d delivery in a row failed after all retries", "%(n)d deliveries in a row failed after all retries", n
        ),
    ),
]


def _owned(request: HttpRequest, endpoint_id) -> WebhookEndpoint:
    try:
        return services.endpoint_owned(request.user, endpoint_id)
    except NotFound as exc:
        raise Http404 from exc


def _secret_keep(request: HttpRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool) -> None:
    request.session[SECRET_SESSION_KEY] = {"endpoint_url": endpoint.url, "secret": secret, "rotated": rotated}


def _secret_pop(request: HttpRequest) -> dict | None:
    return request.session.pop(SECRET_SESSION_KEY, None)


def _disabled_state(endpoint: WebhookEndpoint) -> None:
    """Who switched a disabled endpoint off (``owner``, ``failures`` or ``other``), and the reason in the page's
    language."""
    endpoint.disabled_by = endpoint.reason_text = ""
    if endpoint.enabled:
        return
    reason = endpoint.disabled_reason
    for pattern, translated in FAILURE_REASONS:
        match = pattern.fullmatch(reason)
        if match:
            count = int(match.group(1))
            endpoint.disabled_by, endpoint.reason_text = "failures", translated(count) % {"n": count}
            return
    # Service messages are English (the API's); pages show them translated.
    endpoint.disabled_by = "owner" if reason == OWNER_REASON else "other"
    endpoint.reason_text = gettext(reason) if reason else ""


def _with_state(endpoints) -> list[WebhookEndpoint]:
    endpoints = list(endpoints)
    for endpoint in endpoints:
        _disabled_state(endpoint)
        endpoint.all_events = registry.ALL in endpoint.events
    return endpoints


def _back(request: HttpRequest, endpoint_id) -> str:
    """The page a form was on: the list (``next=list``) or the endpoint's page, at the log's page it showed."""
    if request.POST.get("next") == "list":
        return reverse("events:integrations")
    url = reverse("events:endpoint", args=[endpoint_id])
    page = request.POST.get("page", "")
    return f"{url}?page={page}" if page.isdigit() else url


def endpoint_action(view):
    """A POST that changes one endpoint. The view calls a service and returns its success message; a domain error
    becomes an error message instead, someone else's endpoint a 404; then back to the page the form was on."""

    @login_required
    @require_POST
    @functools.wraps(view)
    def wrapper(request, endpoint_id, **kwargs):
        try:
            text = view(request, endpoint_id, **kwargs)
        except NotFound as exc:
            raise Http404 from exc
        except DomainError as exc:
            messages.error(request, gettext(exc.detail))
        else:
            messages.success(request, text)
        return redirect(_back(request, endpoint_id))

    return wrapper


@login_required
@never_cache  # may hold a new endpoint's secret
@require_http_methods(["GET", "HEAD", "POST"])
def integrations(request):
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(
                owner=request.user,
                url=form.cleaned_data["url"],
                events=form.subscribed(),
                description=form.cleaned_data["description"],
                actor=actor_of(request),
            )
        except DomainError as exc:
            messages.error(request, gettext(exc.detail))
        else:
            _secret_keep(request, endpoint, secret, rotated=False)
            messages.success(request, gettext("Endpoint added. Copy its signing secret now: it is shown only once."))
            return redirect("events:endpoint", endpoint_id=endpoint.pk)
    last = DeliveryAttempt.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-attempt")
    endpoints = _with_state(
        WebhookEndpoint.objects.filter(owner=request.user)
        .annotate(
            last_status=Subquery(last.values("status")[:1]),
            last_code=Subquery(last.values("response_code")[:1]),
            last_at=Subquery(last.values("created_at")[:1]),
        )
        .order_by("-created_at")
    )
    context = {
        "form": form,
        "endpoints": endpoints,
        "auto_disabled": [e for e in endpoints if e.disabled_by == "failures"],
        "secret": _secret_pop(request),
    }
    return render(request, "events/integrations.html", context)


@login_required
@never_cache  # may hold a new or rotated secret
@require_safe
def endpoint(request, endpoint_id):
    (endpoint,) = _with_state([_owned(request, endpoint_id)])
    attempts = (
        DeliveryAttempt.objects.filter(endpoint=endpoint)
        .select_related("delivery__event")
        .order_by("-created_at", "-attempt")
    )
    page = Paginator(attempts, ATTEMPTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"endpoint": endpoint, "page": page, "secret": _secret_pop(request)}
    return render(request, "events/endpoint.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_edit(request, endpoint_id):
    endpoint = _owned(request, endpoint_id)
    form = EndpointForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes = {"url": data["url"], "events": form.subscribed(), "description": data["description"]}
        try:
            services.endpoint_update(
                owner=request.user, endpoint_id=endpoint.pk, changes=changes, actor=actor_of(request)
            )
        except NotFound as exc:  # deleted in another tab meanwhile
            raise Http404 from exc
        except DomainError as exc:
            messages.error(request, gettext(exc.detail))
        else:
            messages.success(request, gettext("Endpoint saved."))
            return redirect("events:endpoint", endpoint_id=endpoint.pk)
    return render(request, "events/edit.html", {"endpoint": endpoint, "form": form})


@endpoint_action
def endpoint_switch(request, endpoint_id, *, enabled: bool) -> str:
    changes = {"enabled": enabled}
    services.endpoint_update(owner=request.user, endpoint_id=endpoint_id, changes=changes, actor=actor_of(request))
    if enabled:
        return gettext("Endpoint enabled. New events are sent to it again.")
    return gettext("Endpoint disabled. No events are sent to it until you enable it again.")


@endpoint_action
def endpoint_test(request, endpoint_id) -> str:
    delivery = services.endpoint_test(owner=request.user, endpoint_id=endpoint_id, actor=actor_of(request))
    return gettext("Test event %(id)s sent. Its result appears in the delivery log.") % {"id": delivery.event_id}


@endpoint_action
def secret_rotate(request, endpoint_id) -> str:
    endpoint, secret = services.endpoint_rotate_secret(
        owner=request.user, endpoint_id=endpoint_id, actor=actor_of(request)
    )
    _secret_keep(request, endpoint, secret, rotated=True)
    return gettext("New signing secret made. Copy it now: it is shown only once.")


@endpoint_action
def redeliver(request, endpoint_id, *, delivery_id) -> str:
    row = services.delivery_redeliver(
        owner=request.user, endpoint_id=endpoint_id, delivery_id=delivery_id, actor=actor_of(request)
    )
    return gettext("Event %(id)s sent again as attempt %(attempt)d.") % {
        "id": row.delivery.event_id,
        "attempt": row.attempt,
    }


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_delete(request, endpoint_id):
    endpoint = _owned(request, endpoint_id)
    if request.method == "POST":
        try:
            services.endpoint_delete(owner=request.user, endpoint_id=endpoint.pk, actor=actor_of(request))
        except NotFound as exc:  # deleted by a second click or tab meanwhile
            raise Http404 from exc
        messages.success(request, gettext("Endpoint %(url)s deleted with its delivery log.") % {"url": endpoint.url})
        return redirect("events:integrations")
    return render(request, "events/delete.html", {"endpoint": endpoint})

"""Portal pages: the notification list, read marks, e-mail preferences, the one-click unsubscribe, and the
language switch that remembers the chosen language for mails. Thin: writes go through ``services``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views import i18n
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from notifications import kinds, selectors, services
from notifications.forms import PreferencesForm
from notifications.models import Kind

PER_PAGE = 25


@require_safe
@login_required
@never_cache
def notifications(request: HttpRequest):
    unread_only = request.GET.get("unread") == "1"
    page = Paginator(selectors.notifications_of(request.user, unread_only=unread_only), PER_PAGE).get_page(
        request.GET.get("page")
    )
    items = [(row, kinds.text(row.kind, row.data)) for row in page.object_list]
    return render(
        request,
        "notifications/list.html",
        {"page": page, "items": items, "unread_only": unread_only, "unread": selectors.unread_count(request.user)},
    )


@require_POST
@login_required
def notification_read(request: HttpRequest, notification_id: int):
    try:
        services.notification_read(user=request.user, notification_id=notification_id)
    except services.NotificationNotFound as exc:
        raise Http404 from exc
    return redirect("notifications:list")


@require_POST
@login_required
def notifications_read_all(request: HttpRequest):
    count = services.notifications_read_all(user=request.user)
    if count:
        messages.success(request, gettext("All notifications are marked as read."))
    return redirect("notifications:list")


@require_POST
@login_required
def preferences_save(request: HttpRequest):
    form = PreferencesForm(request.POST)
    if form.is_valid():
        services.preferences_set(user=request.user, email=form.email_choices())
        messages.success(request, gettext("Your notification settings are saved."))
    return redirect("accounts:profile")


@csrf_exempt  # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" with no session; the signed link decides
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def unsubscribe(request: HttpRequest, token: str):
    found = services.unsubscribe_read(token)
    if found is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    user, kind = found
    done = request.method == "POST"
    if done:
        services.preferences_set(user=user, email={kind: False})
    return render(request, "notifications/unsubscribe.html", {"kind_label": Kind(kind).label, "done": done})


def language_set(request: HttpRequest):
    """Django's ``set_language``, and for a signed-in user the choice is kept for their e-mails."""
    response = i18n.set_language(request)
    if request.method == "POST" and request.user.is_authenticated:
        services.user_language_set(user=request.user, language=request.POST.get("language", ""))
    return response

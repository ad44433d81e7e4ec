"""The Usage page (``/usage/``): the user's own requests and traffic per day, sessions and tokens' time left."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from access.models import AccessToken, TokenStatus
from access.prices import duration_label
from access.selectors import usable_tokens
from access.views import countdown
from analytics.usage import own_token, sessions_of, usage_of


def _tokens_left(user) -> list[AccessToken]:
    """The user's usable tokens with what ``access/_time_left.html`` shows."""
    now = timezone.now()
    tokens = list(usable_tokens(AccessToken.objects.filter(user=user)).order_by("expires_at", "-created_at"))
    for token in tokens:
        token.state = token.status_at(now)
        token.left = countdown(token.seconds_left(now)) if token.state == TokenStatus.ACTIVE else None
        token.duration_text = duration_label(token.duration_hours)
        token.expires_iso = token.expires_at.isoformat(timespec="milliseconds") if token.expires_at else ""
    return tokens


@login_required
@require_safe
def usage(request):
    token = None
    if request.GET.get("token"):
        token = own_token(user=request.user, token_id=request.GET["token"])
        if token is None:
            raise Http404
    month = usage_of(user=request.user, period="month", token=token)
    sessions = sessions_of(user=request.user, token=token)
    for session in sessions:
        session.duration = countdown(int((session.last_activity - session.started_at).total_seconds()))
    chart = {
        "t": [int(point["t"].timestamp()) for point in month["series"]],
        "requests": [point["requests"] for point in month["series"]],
        "bytes": [point["bytes"] for point in month["series"]],
        "sessions": [point["sessions"] for point in month["series"]],
    }
    # The selector lists the tokens used in the 30 days, plus the one chosen if it was not.
    choices = [{"id": str(row["token_id"]), "prefix": row["prefix"]} for row in month["by_token"]]
    if token is not None and str(token.pk) not in {c["id"] for c in choices}:
        choices.append({"id": str(token.pk), "prefix": token.secret_prefix})
    context = {
        "usage": month,
        "chart": chart,
        "days": list(reversed(month["series"])),
        "sessions": sessions,
        "tokens": _tokens_left(request.user),
        "choices": choices,
        "selected": str(token.pk) if token else "",
        "now": timezone.now().isoformat(timespec="milliseconds"),  # the countdowns of access/_scripts.html
        "has_usage": bool(month["total_requests"] or month["total_sessions"] or sessions),
    }
    return render(request, "analytics/usage.html", context)

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.vary import vary_on_headers

from access.prices import price_table, rub_rate
from zenzefi.health import current as health_current
from zenzefi.health import readiness

VERSION = "1.0.0"


@vary_on_headers("Accept")
def home(request):
    # Browsers name text/html in Accept; curl, httpx and monitoring probes send */* or nothing and get the
    # reference's JSON welcome, as does anyone preferring JSON over HTML.
    if request.get_preferred_type(["application/json", "text/html"]) != "text/html":
        return JsonResponse({"message": "Welcome to Zenzefi Backend", "version": VERSION, "docs": "/docs"})
    return render(request, "home.html", {"prices": price_table(), "rub_rate": rub_rate()})


def health(request):
    """Always 200: the desktop client reads ``status`` from the body. Answered from the cached report."""
    report = health_current()
    return JsonResponse({k: v for k, v in report.items() if k != "checked_at"})


def health_live(request):
    """The process is up (no dependency is asked): for orchestrators' liveness probes."""
    return JsonResponse({"status": "alive"})


def health_ready(request):
    """For load balancers: 503 when this process cannot reach its database (the ASGI app answers it first)."""
    status, body = readiness()
    return JsonResponse(body, status=status)

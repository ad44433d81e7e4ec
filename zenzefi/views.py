from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

from access.prices import price_table
from zenzefi.health import current as health_current

VERSION = "1.0.0"


def home(request):
    # Integrators probing the root get the reference's JSON welcome; browsers get the portal.
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JsonResponse({"message": "Welcome to Zenzefi Backend", "version": VERSION, "docs": "/docs"})
    return render(request, "home.html", {"prices": price_table(), "rub_rate": settings.ZNC_TO_RUB_RATE})


def health(request):
    """Always 200: the desktop client reads ``status`` from the body. Answered from the cached report."""
    report = health_current()
    return JsonResponse({k: v for k, v in report.items() if k != "checked_at"})


def health_live(request):
    """The process is up (no dependency is asked): for orchestrators' liveness probes."""
    return JsonResponse({"status": "alive"})


def health_ready(request):
    """503 when unhealthy, for load balancers."""
    report = health_current()
    body = {k: v for k, v in report.items() if k != "checked_at"}
    return JsonResponse(body, status=503 if report["status"] == "unhealthy" else 200)

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from access.prices import price_table

VERSION = "1.0.0"


def home(request):
    # Integrators probing the root get the reference's JSON welcome; browsers get the portal.
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JsonResponse({"message": "Welcome to Zenzefi Backend", "version": VERSION, "docs": "/docs"})
    return render(request, "home.html", {"prices": price_table(), "rub_rate": settings.ZNC_TO_RUB_RATE})


def health(request):
    """Always 200: the desktop client reads ``status`` from the body."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status = "healthy"
    except Exception:
        status = "unhealthy"
    timestamp = timezone.now().isoformat().replace("+00:00", "Z")
    return JsonResponse({"status": status, "timestamp": timestamp})

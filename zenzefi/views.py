from django.http import JsonResponse

from zenzefi.health import current as health_current
from zenzefi.health import readiness


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

"""The last handlers (Django's ``handler400``, ``handler404``, ``handler500``): JSON under ``/api/``, pages elsewhere.

They answer what nothing else caught: under ``/api/`` DRF's exception handler
(``zenzefi.exceptions``) has already turned every known error into a ``detail``,
so what arrives here is a bug or a request Django itself refused.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults

from zenzefi.parsers import too_large_detail


def _api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if not _api(request):
        return defaults.bad_request(request, exception, template_name)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": too_large_detail()}, status=413)
    return JsonResponse({"detail": "Bad request"}, status=400)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    """A path no route matches (inside an API view, DRF answers its own 404s)."""
    if not _api(request):
        return defaults.page_not_found(request, exception, template_name)
    return JsonResponse({"detail": "Not found"}, status=404)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    """The request id lets a user's report be matched with the logged traceback."""
    if not _api(request):
        return defaults.server_error(request, template_name)
    return JsonResponse(
        {"detail": "Internal server error", "request_id": getattr(request, "request_id", None)}, status=500
    )

"""One place that turns errors into the API's JSON shape: ``{"detail": ...}``.

Validation errors keep DRF's field keys and gain a readable ``detail``. An
unreachable database answers 503 (``zenzefi.database``).
"""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from zenzefi import database
from zenzefi.errors import DomainError, RateLimited


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            message = _first_message(value)
            if message:
                return message if key == "non_field_errors" else f"{key}: {message}"
        return ""
    if isinstance(errors, list):
        for item in errors:
            message = _first_message(item)
            if message:
                return message
        return ""
    return str(errors)


def api_exception_handler(exc, context):
    if database.is_unreachable(exc):
        database.unreachable_logged(exc, where="API")
        response = Response({"detail": database.DETAIL}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response._has_been_logged = True  # the warning above stands for it: no "Service Unavailable" error line
        return response
    if isinstance(exc, DomainError):
        body = {"detail": exc.detail}
        if exc.field:
            body[exc.field] = [exc.detail]
        response = Response(body, status=exc.status_code)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            for name, value in exc.headers().items():
                response[name] = value
        return response
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        response = Response({"detail": f"Rate limit exceeded. Try again in {wait} seconds."}, status=429)
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.NotAuthenticated):
        return Response({"detail": "Not authenticated"}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {"detail": _first_message(errors) or "Invalid input."}
        body.update(errors)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": _first_message(response.data), **response.data}
    return response

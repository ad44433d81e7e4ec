from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse, JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.deprecation import MiddlewareMixin

from zenzefi import database


class HybridMiddleware:
    """A middleware that runs natively in both modes: ``before`` the view, ``after`` it with the response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def before(self, request) -> None:
        return None

    def after(self, request, response):
        return response

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request):
        self.before(request)
        return self.after(request, await self.get_response(request))


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """An unreachable database answers 503 instead of a 500 with a traceback: a JSON ``detail`` under
    ``/api/`` (views outside DRF, whose exception handler does the same), else the standalone 503 page,
    which asks nothing of the database (no session, no user)."""

    def process_exception(self, request, exception):
        if not database.is_unreachable(exception):
            return None
        api = request.path.startswith("/api/")
        database.unreachable_logged(exception, where="API" if api else "portal")
        if api:
            response = JsonResponse({"detail": database.DETAIL}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Cache-Control"] = "no-store"
        response._has_been_logged = True  # the warning above stands for it: no "Service Unavailable" error line
        return response


class PortalLocaleMiddleware(LocaleMiddleware):
    """Picks the portal's language; the API always answers in English, as the reference does."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return
        super().process_request(request)

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


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


class PortalLocaleMiddleware(LocaleMiddleware):
    """Picks the portal's language; the API always answers in English, as the reference does."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return
        super().process_request(request)

from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.renderers import OpenApiJsonRenderer2
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from zenzefi import views
from zenzefi.metrics import metrics_view


class OpenApiJsonView(SpectacularAPIView):
    """``/openapi.json``: the schema as ``application/json`` whatever ``Accept`` says, since the path promises JSON
    (``/api/schema`` keeps content negotiation)."""

    renderer_classes = [OpenApiJsonRenderer2]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


# Under /api/ the last handlers answer JSON, elsewhere the portal's pages.
handler400 = "zenzefi.errorviews.bad_request"
handler404 = "zenzefi.errorviews.page_not_found"
handler500 = "zenzefi.errorviews.server_error"

# Lazy strings: each admin page renders them in its user's language.
admin.site.site_header = _("Zenzefi Gate · admin")
admin.site.site_title = _("Zenzefi Gate · admin")
admin.site.index_title = _("Administration")

urlpatterns = [
    path("", include("access.home_urls")),
    path("health", views.health, name="health"),
    path("health/live", views.health_live, name="health-live"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("", include("accounts.urls")),
    path("wallet/", include("wallet.urls")),
    path("access/", include("access.urls")),
    path("gifts/", include("access.gift_urls")),
    path("zenzefi/", include("proxy.urls")),
    path("integrations/", include("events.urls")),
    path("notifications/", include("notifications.urls")),
    path("usage/", include("analytics.urls")),
    # Django's set_language, and the choice is kept for the user's e-mails.
    path("", include("notifications.i18n_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    path("openapi.json", OpenApiJsonView.as_view(), name="openapi-json"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("metrics", metrics_view, name="metrics"),
    # /api/v1/...: each app's routes, named in its api_urls (within one the order matters: the first match wins).
    path("", include("accounts.api_urls")),
    path("", include("access.api_urls")),
    path("", include("wallet.api_urls")),
    path("", include("events.api_urls")),
    path("", include("notifications.api_urls")),
    path("", include("analytics.api_urls")),
]

from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.renderers import OpenApiJsonRenderer2
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from access import api as access_api
from access import gift_api, tier_api
from accounts import api as accounts_api
from events import api as events_api
from notifications import api as notifications_api
from notifications import views as notifications_views
from wallet import api as wallet_api
from zenzefi import views
from zenzefi.metrics import metrics_view


class OpenApiJsonView(SpectacularAPIView):
    """``/openapi.json``: the schema as ``application/json`` whatever ``Accept`` says, since the path promises JSON
    (``/api/schema`` keeps content negotiation)."""

    renderer_classes = [OpenApiJsonRenderer2]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


def api(route: str, view, name: str):
    """An API route that answers with and without a trailing slash (no redirect, so POST works)."""
    return re_path(rf"^api/v1/{route}/?$", view, name=name)


api_urlpatterns = [
    api("auth/register", accounts_api.RegisterView.as_view(), "api-auth-register"),
    api("auth/login", accounts_api.LoginView.as_view(), "api-auth-login"),
    api("auth/refresh", accounts_api.RefreshView.as_view(), "api-auth-refresh"),
    api("users/me", accounts_api.MeView.as_view(), "api-users-me"),
    api("users/me/referrals", accounts_api.ReferralsView.as_view(), "api-users-referrals"),
    api("users/me/auto-renewal", access_api.AutoRenewalView.as_view(), "api-users-auto-renewal"),
    api("users/me/tier", tier_api.TierView.as_view(), "api-users-tier"),
    api("tokens/purchase", access_api.TokenPurchaseView.as_view(), "api-tokens-purchase"),
    api("tokens/my-tokens", access_api.MyTokensView.as_view(), "api-tokens-mine"),
    api("tokens/(?P<token_id>[^/]+)/gift", gift_api.TokenGiftView.as_view(), "api-token-gift"),
    api("tokens/(?P<token_id>[^/]+)", access_api.TokenView.as_view(), "api-token"),
    api("gifts", gift_api.GiftsView.as_view(), "api-gifts"),
    api("gifts/buy", gift_api.GiftBuyView.as_view(), "api-gifts-buy"),
    api("gifts/claim/(?P<code>[^/]+)", gift_api.GiftClaimView.as_view(), "api-gift-claim"),
    api("gifts/(?P<gift_id>[^/]+)/cancel", gift_api.GiftCancelView.as_view(), "api-gift-cancel"),
    api("bundles", access_api.BundlesView.as_view(), "api-bundles"),
    api("bundles/(?P<bundle_id>[^/]+)/purchase", access_api.BundlePurchaseView.as_view(), "api-bundle-purchase"),
    api("bundles/(?P<bundle_id>[^/]+)", access_api.BundleView.as_view(), "api-bundle"),
    api("admin/tokens", access_api.AdminTokensView.as_view(), "api-admin-tokens"),
    api("admin/tokens/(?P<token_id>[^/]+)", access_api.AdminTokenView.as_view(), "api-admin-token"),
    api("currency/balance", wallet_api.BalanceView.as_view(), "api-currency-balance"),
    api("currency/transactions", wallet_api.TransactionsView.as_view(), "api-currency-transactions"),
    api("currency/mock-purchase", wallet_api.MockPurchaseView.as_view(), "api-currency-mock-purchase"),
    api("currency/rates", wallet_api.RatesView.as_view(), "api-currency-rates"),
    api("currency/purchase", wallet_api.PurchaseView.as_view(), "api-currency-purchase"),
    api("currency/payments/(?P<payment_id>[^/]+)", wallet_api.PaymentDetailView.as_view(), "api-currency-payment"),
    api("webhooks/payment", wallet_api.WebhookView.as_view(), "api-webhooks-payment"),
    api("webhooks/yookassa", wallet_api.YooKassaWebhookView.as_view(), "api-webhooks-yookassa"),
    api("webhooks/stripe", wallet_api.StripeWebhookView.as_view(), "api-webhooks-stripe"),
    api("webhooks/mock-payment", wallet_api.MockPaymentView.as_view(), "api-webhooks-mock-payment"),
    api("admin/users", wallet_api.AdminUsersView.as_view(), "api-admin-users"),
    api("admin/users/(?P<user_id>[^/]+)", wallet_api.AdminUserView.as_view(), "api-admin-user"),
    api("admin/audit-logs", wallet_api.AdminAuditLogsView.as_view(), "api-admin-audit-logs"),
    api("webhook-endpoints", events_api.EndpointsView.as_view(), "api-webhook-endpoints"),
    api("webhook-endpoints/(?P<endpoint_id>[^/]+)", events_api.EndpointView.as_view(), "api-webhook-endpoint"),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/rotate-secret",
        events_api.RotateSecretView.as_view(),
        "api-webhook-endpoint-rotate",
    ),
    api("webhook-endpoints/(?P<endpoint_id>[^/]+)/test", events_api.TestView.as_view(), "api-webhook-endpoint-test"),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/deliveries",
        events_api.DeliveriesView.as_view(),
        "api-webhook-endpoint-deliveries",
    ),
    api(
        "webhook-endpoints/(?P<endpoint_id>[^/]+)/deliveries/(?P<delivery_id>[^/]+)/redeliver",
        events_api.RedeliverView.as_view(),
        "api-webhook-endpoint-redeliver",
    ),
    api("notifications", notifications_api.NotificationsView.as_view(), "api-notifications"),
    api("notifications/read-all", notifications_api.NotificationsReadAllView.as_view(), "api-notifications-read-all"),
    api(
        "notifications/(?P<notification_id>[^/]+)/read",
        notifications_api.NotificationReadView.as_view(),
        "api-notification-read",
    ),
    api(
        "users/me/notification-preferences",
        notifications_api.PreferencesView.as_view(),
        "api-notification-preferences",
    ),
]

# Under /api/ the last handlers answer JSON, elsewhere the portal's pages.
handler400 = "zenzefi.errorviews.bad_request"
handler404 = "zenzefi.errorviews.page_not_found"
handler500 = "zenzefi.errorviews.server_error"

# Lazy strings: each admin page renders them in its user's language.
admin.site.site_header = _("Zenzefi Gate · admin")
admin.site.site_title = _("Zenzefi Gate · admin")
admin.site.index_title = _("Administration")

urlpatterns = [
    path("", views.home, name="home"),
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
    path("i18n/setlang/", notifications_views.language_set, name="notifications-set-language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    path("openapi.json", OpenApiJsonView.as_view(), name="openapi-json"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("metrics", metrics_view, name="metrics"),
    *api_urlpatterns,
    path("", include("analytics.api_urls")),
]

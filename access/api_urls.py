"""The /api/v1 routes of access, included by zenzefi/urls.py by name. Order matters: the first match wins."""

from access import api as access_api
from access import gift_api, tier_api
from zenzefi.routing import api

urlpatterns = [
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
]

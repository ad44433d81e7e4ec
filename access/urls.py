from django.urls import path

from access import tier_views, views

app_name = "access"

urlpatterns = [
    path("", views.buy, name="buy"),
    path("buy/token/", views.confirm_token, name="confirm_token"),
    path("buy/bundle/<uuid:bundle_id>/", views.confirm_bundle, name="confirm_bundle"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/", views.token, name="token"),
    path("tokens/<uuid:token_id>/revoke/", views.revoke, name="revoke"),
    path("tokens/<uuid:token_id>/auto-renew/", views.auto_renew, name="auto_renew"),
    path("auto-renewal/", views.auto_renewal_settings, name="auto_renewal_settings"),
    path("plan/", tier_views.tier_set, name="tier_set"),
]

"""The /api/v1 routes of accounts, included by zenzefi/urls.py by name. Order matters: the first match wins."""

from accounts import api as accounts_api
from zenzefi.routing import api

urlpatterns = [
    api("auth/register", accounts_api.RegisterView.as_view(), "api-auth-register"),
    api("auth/login", accounts_api.LoginView.as_view(), "api-auth-login"),
    api("auth/refresh", accounts_api.RefreshView.as_view(), "api-auth-refresh"),
    api("users/me", accounts_api.MeView.as_view(), "api-users-me"),
    api("users/me/referrals", accounts_api.ReferralsView.as_view(), "api-users-referrals"),
]

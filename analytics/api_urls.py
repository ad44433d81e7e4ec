"""``/api/v1/analytics/...`` routes, included by zenzefi/urls.py by name.

Each route is ``re_path(r"^api/v1/analytics/<route>/?$", View.as_view(), name=...)`` (with and without
the trailing slash, as every API path).
"""

from django.urls import re_path

from analytics import api, business_api

urlpatterns: list = [
    re_path(r"^api/v1/analytics/usage/?$", api.UsageView.as_view(), name="api-analytics-usage"),
    re_path(r"^api/v1/analytics/admin/global/?$", business_api.GlobalView.as_view(), name="api-analytics-admin-global"),
]

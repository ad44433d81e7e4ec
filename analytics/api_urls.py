"""``/api/v1/analytics/...`` routes, included by zenzefi/urls.py by name.

Each route is ``re_path(r"^api/v1/analytics/<route>/?$", View.as_view(), name=...)`` (with and without
the trailing slash, as every API path).
"""

urlpatterns: list = []

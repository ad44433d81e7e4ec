"""The operator dashboard on the Django admin index (/admin/), above Django's own app list.

How it is wired, and why this way:

- The page is Django's index view with Django's index template, extended by
  ``templates/admin/index.html`` (the dashboard, then ``{{ block.super }}``).
- The figures reach the template through the index view's ``extra_context``:
  ``dashboard_install`` replaces ``site.index`` on the one default site with a
  wrapper that adds ``dashboard``. ``AdminSite.get_urls`` looks ``self.index``
  up when ``admin.site.urls`` is first read (zenzefi/urls.py), so
  ``AnalyticsConfig.ready()`` calls this, before any URLconf is loaded.
- Not a custom AdminSite: every app registers on ``admin.site`` and the
  project's admin modules (wallet, access) unregister/re-register the user
  admin there; swapping the site would have to replay all of that.
- Not a context processor: it would run on every admin page (and every portal
  page), not just the index.
- The wrapper runs inside ``admin_view``: only active staff get this far, and
  only those allowed to see money (``DASHBOARD_PERMISSION``; superusers have
  it) get the figures. Other staff see the plain app list.
- The charts below the figures (``dashboard_charts``, drawn by static/js/admin-charts.js with the vendored
  uPlot) and the CSV export of the daily figures (``/admin/analytics/daily.csv``, added in front of the
  admin's own URLs, so its catch-all does not answer first) need the same permission.

Installed from the analytics app, not from zenzefi/urls.py: ``zenzefi`` imports
no app (tests/test_import_graph.py).
"""

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path

from analytics.dashboard import dashboard_figures
from analytics.selectors import business_daily, dashboard_charts

DASHBOARD_PERMISSION = "wallet.view_transaction"


def dashboard_install(site: admin.AdminSite = admin.site) -> None:
    """Show the dashboard on ``site``'s index page. Call before ``site.urls`` is read; calling twice is harmless."""
    index = site.index
    if getattr(index, "shows_dashboard", False):
        return

    def index_with_dashboard(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if request.user.has_perm(DASHBOARD_PERMISSION):
            figures = context["dashboard"] = dashboard_figures()
            context["dashboard_charts"] = dashboard_charts(tokens_by_duration=figures["tokens_by_duration"])
        return index(request, extra_context=context)

    index_with_dashboard.shows_dashboard = True
    site.index = index_with_dashboard
    get_urls = site.get_urls

    def get_urls_with_exports():
        # Before the admin's own patterns: its catch-all would answer /admin/analytics/... first.
        export = path("analytics/daily.csv", site.admin_view(daily_csv), name="analytics_daily_csv")
        return [export, *get_urls()]

    site.get_urls = get_urls_with_exports


CSV_COLUMNS = [
    "date",
    "revenue_znc",
    "refunds_znc",
    "net_revenue_znc",
    "referral_payouts_znc",
    "new_users",
    "token_purchases",
    "proxy_requests",
    "proxy_bytes",
    "dau",
]


def daily_csv(request: HttpRequest) -> HttpResponse:
    """``/admin/analytics/daily.csv``: the dashboard's daily figures of the last 30 UTC days, one row per day
    (analytics.selectors.business_daily), for staff who may see money. Column names stay English (a file for
    spreadsheets and scripts, not a page)."""
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        raise PermissionDenied
    rows = business_daily()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="zenzefi-daily-{rows[0]["date"]}-{rows[-1]["date"]}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row[column] for column in CSV_COLUMNS])
    return response

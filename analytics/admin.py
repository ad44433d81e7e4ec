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

Installed from the analytics app, not from zenzefi/urls.py: ``zenzefi`` imports
no app (tests/test_import_graph.py).
"""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from analytics.dashboard import dashboard_figures

DASHBOARD_PERMISSION = "wallet.view_transaction"


def dashboard_install(site: admin.AdminSite = admin.site) -> None:
    """Show the dashboard on ``site``'s index page. Call before ``site.urls`` is read; calling twice is harmless."""
    index = site.index
    if getattr(index, "shows_dashboard", False):
        return

    def index_with_dashboard(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if request.user.has_perm(DASHBOARD_PERMISSION):
            context["dashboard"] = dashboard_figures()
        return index(request, extra_context=context)

    index_with_dashboard.shows_dashboard = True
    site.index = index_with_dashboard

"""The operator dashboard on the Django admin index (/admin/), above Django's own app list.

How it is wired, and why this way:

- The page is Django's index view with Django's index template, extended by
  ``templates/admin/index.html`` (the dashboard, then ``{{ block.super }}``).
- The figures reach the template through the index view's ``extra_context``:
  ``dashboard_install`` replaces ``site.index`` on the one default site with a
  wrapper that adds ``dashboard``. ``AdminSite.get_urls`` looks ``self.index``
  up when ``admin.site.urls`` is first read, so zenzefi/urls.py calls this just
  before its ``urlpatterns``.
- Not a custom AdminSite: every app registers on ``admin.site`` and the
  project's admin modules (wallet, access) unregister/re-register the user
  admin there; swapping the site would have to replay all of that.
- Not a context processor: it would run on every admin page (and every portal
  page), not just the index.
- The wrapper runs inside ``admin_view``: only active staff get this far, and
  only those allowed to see money (``DASHBOARD_PERMISSION``; superusers have
  it) get the figures. Other staff see the plain app list.

This module is not discovered by ``admin.autodiscover`` (``zenzefi`` is the
project package, not an installed app); it does nothing until called.
"""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from zenzefi.dashboard import dashboard_figures

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

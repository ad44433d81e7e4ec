"""URL helpers the apps' ``api_urls`` modules share (zenzefi sits below every app, so any app may import it)."""

from django.urls import re_path


def api(route: str, view, name: str):
    """An API route that answers with and without a trailing slash (no redirect, so POST works)."""
    return re_path(rf"^api/v1/{route}/?$", view, name=name)

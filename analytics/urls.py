"""Portal pages of analytics (``/usage/``), included by zenzefi/urls.py by name."""

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns: list = [
    path("", views.usage, name="usage"),
]

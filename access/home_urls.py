"""The home page (``/``): the welcome and the price list; included by zenzefi/urls.py by name."""

from django.urls import path

from access import views

urlpatterns = [
    path("", views.home, name="home"),
]

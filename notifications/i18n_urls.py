"""Django's set_language, and the choice is kept for the user's e-mails; included by zenzefi/urls.py by name,
ahead of ``django.conf.urls.i18n``."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("i18n/setlang/", views.language_set, name="notifications-set-language"),
]

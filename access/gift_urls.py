from django.urls import path

from access import gift_views

app_name = "gifts"

urlpatterns = [
    path("", gift_views.gifts, name="list"),
    path("<uuid:gift_id>/cancel/", gift_views.cancel, name="cancel"),
    path("claim/<str:code>", gift_views.claim, name="claim"),
]

from django.urls import path

from access import gift_views

app_name = "gifts"

urlpatterns = [
    path("", gift_views.gifts_list, name="list"),
    path("give/<uuid:token_id>/", gift_views.give, name="give"),
    path("<uuid:gift_id>/cancel/", gift_views.cancel, name="cancel"),
    path("claim/<str:code>", gift_views.claim, name="claim"),
]

from django.urls import path

from wallet import views

app_name = "wallet"

urlpatterns = [
    path("", views.wallet, name="wallet"),
    path("history/", views.history, name="history"),
    path("payments/<uuid:payment_id>/", views.payment_status, name="payment"),
    path("checkout/<uuid:payment_id>/", views.checkout, name="checkout"),
    path("checkout/<uuid:payment_id>/submit/", views.checkout_submit, name="checkout_submit"),
]

from django.urls import path

from proxy import views

app_name = "proxy"

urlpatterns = [
    path("open/<uuid:token_id>/", views.open_zenzefi, name="open"),
]

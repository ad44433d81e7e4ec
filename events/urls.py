from django.urls import path

from events import views

app_name = "events"

urlpatterns = [
    path("", views.integrations, name="integrations"),
    path("<uuid:endpoint_id>/", views.endpoint, name="endpoint"),
    path("<uuid:endpoint_id>/edit/", views.endpoint_edit, name="edit"),
    path("<uuid:endpoint_id>/enable/", views.endpoint_switch, {"enabled": True}, name="enable"),
    path("<uuid:endpoint_id>/disable/", views.endpoint_switch, {"enabled": False}, name="disable"),
    path("<uuid:endpoint_id>/test/", views.endpoint_test, name="test"),
    path("<uuid:endpoint_id>/rotate-secret/", views.secret_rotate, name="rotate"),
    path("<uuid:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
    path(
        "<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver/",
        views.redeliver,
        name="redeliver",
    ),
]

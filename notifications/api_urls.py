"""The /api/v1 routes of notifications, included by zenzefi/urls.py by name. Order matters: the first match wins."""

from notifications import api as notifications_api
from zenzefi.routing import api

urlpatterns = [
    api("notifications", notifications_api.NotificationsView.as_view(), "api-notifications"),
    api("notifications/read-all", notifications_api.NotificationsReadAllView.as_view(), "api-notifications-read-all"),
    api(
        "notifications/(?P<notification_id>[^/]+)/read",
        notifications_api.NotificationReadView.as_view(),
        "api-notification-read",
    ),
    api(
        "users/me/notification-preferences",
        notifications_api.PreferencesView.as_view(),
        "api-notification-preferences",
    ),
]

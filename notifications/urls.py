from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notifications, name="list"),
    path("<int:notification_id>/read/", views.notification_read, name="read"),
    path("read-all/", views.notifications_read_all, name="read_all"),
    path("preferences/", views.preferences_save, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]

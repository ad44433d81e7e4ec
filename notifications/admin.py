"""Notifications in Django admin, read-only: what each user was told and whether it was e-mailed."""

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "kind", "key", "read_at", "email_status", "emailed_at"]
    list_filter = ["kind", "email_status"]
    search_fields = ["user__email", "user__username", "key"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"

from django.contrib import admin

from proxy.models import ProxySession


@admin.register(ProxySession)
class ProxySessionAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "user",
        "token",
        "device_id",
        "mode",
        "ip_address",
        "request_count",
        "bytes_in",
        "bytes_out",
        "last_activity",
        "ended_at",
        "end_reason",
    )
    list_filter = ("mode", "end_reason", ("ended_at", admin.EmptyFieldListFilter), "started_at")
    search_fields = ("user__email", "user__username", "device_id", "ip_address", "token__secret_prefix")
    date_hierarchy = "started_at"
    list_select_related = ("user", "token")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

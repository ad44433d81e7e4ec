"""Portal pages of analytics (``/usage/``), included by zenzefi/urls.py by name."""

app_name = "analytics"

urlpatterns: list = []

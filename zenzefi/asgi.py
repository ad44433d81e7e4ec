"""ASGI entry point.

Django serves everything. The proxy's hot path (``/api/v1/proxy/``) will be
routed here by prefix to a small raw-ASGI app, ahead of Django's handler.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenzefi.settings")

application = get_asgi_application()

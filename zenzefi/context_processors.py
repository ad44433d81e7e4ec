from django.conf import settings


def demo(request) -> dict:
    """``zenzefi_demo``: the proxy points at the project's fake Zenzefi (scripts/run's demo upstream)."""
    return {"zenzefi_demo": settings.ZENZEFI_DEMO}

"""Keys derived from one master secret (TOKEN_ENCRYPTION_KEY, else SECRET_KEY), one per purpose.

A database dump alone reveals no secret kept encrypted with them.
"""

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet
from django.conf import settings


def _master() -> bytes:
    return (settings.TOKEN_ENCRYPTION_KEY or settings.SECRET_KEY).encode()


@lru_cache(maxsize=16)
def _derive(master: bytes, purpose: str) -> bytes:
    return hmac.new(master, f"zenzefi-gate/{purpose}".encode(), hashlib.sha256).digest()


def derived_key(purpose: str) -> bytes:
    """32 bytes for ``purpose``; another purpose or master secret gives an unrelated key."""
    return _derive(_master(), purpose)


@lru_cache(maxsize=16)
def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


def fernet(purpose: str) -> Fernet:
    return _fernet(derived_key(purpose))

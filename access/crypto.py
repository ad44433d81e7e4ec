"""Token secrets at rest: encrypted (Fernet) and found by a keyed digest (HMAC-SHA256).

A database dump alone reveals neither live tokens nor a way to test guesses
against the digests: both keys come from TOKEN_ENCRYPTION_KEY (or SECRET_KEY).
"""

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet
from django.conf import settings

SECRET_BYTES = 48  # token_urlsafe(48) is 64 characters


def _master() -> bytes:
    return (settings.TOKEN_ENCRYPTION_KEY or settings.SECRET_KEY).encode()


@lru_cache(maxsize=4)
def _keys(master: bytes) -> tuple[Fernet, bytes]:
    encryption = hmac.new(master, b"zenzefi-gate/token-encryption", hashlib.sha256).digest()
    digest = hmac.new(master, b"zenzefi-gate/token-digest", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(encryption)), digest


def secret_generate() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    return hmac.new(_keys(_master())[1], secret.encode(), hashlib.sha256).hexdigest()


def secret_encrypt(secret: str) -> str:
    return _keys(_master())[0].encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _keys(_master())[0].decrypt(token.encode()).decode()

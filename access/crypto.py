"""Token secrets at rest: encrypted (Fernet) and found by a keyed digest (HMAC-SHA256).

A database dump alone reveals neither live tokens nor a way to test guesses
against the digests: both keys come from TOKEN_ENCRYPTION_KEY (or SECRET_KEY).
"""

import hashlib
import hmac
import secrets

from zenzefi.keys import derived_key, fernet

SECRET_BYTES = 48  # token_urlsafe(48) is 64 characters


def secret_generate() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    return hmac.new(derived_key("token-digest"), secret.encode(), hashlib.sha256).hexdigest()


def secret_encrypt(secret: str) -> str:
    return fernet("token-encryption").encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return fernet("token-encryption").decrypt(token.encode()).decode()

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class MaximumLengthValidator:
    """Caps password length so hashing a huge input cannot tie up a worker."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    self.max_length,
                ),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self):
        return _("Your password must contain at most %(max_length)d characters.") % {"max_length": self.max_length}


# Format characters (right-to-left override, zero-width space and joiner, BOM…) and control characters
# are invisible: with them a username can pass for another user's in the admin and on referral pages.
REFUSED_USERNAME_CATEGORIES = ("Cf", "Cc")


def username_normalise(value: str) -> str:
    """The stored form of a username: NFKC (full-width and compatibility forms folded, as Django does), stripped."""
    return unicodedata.normalize("NFKC", value).strip()


def validate_username_characters(value: str) -> None:
    refused = [ch for ch in dict.fromkeys(value) if unicodedata.category(ch) in REFUSED_USERNAME_CATEGORIES]
    if refused:
        raise ValidationError(
            _("Username cannot contain invisible or control characters (%(characters)s)."),
            code="username_invisible_characters",
            params={"characters": ", ".join(f"U+{ord(ch):04X}" for ch in refused)},
        )

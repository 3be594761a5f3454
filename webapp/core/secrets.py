"""Secrets kept in the database (PACS passwords and tokens), encrypted at rest.

A database dump or backup must not hand out the PACS's credentials. Values are sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key derived from ``SECRET_KEY``; after a
key rotation ``SECRET_KEY_FALLBACKS`` still open old values (Django's own rotation setting). A value
no key opens reads back as an :class:`UnreadableSecret`: pages keep working, and using it for a
connection raises a message that says what to do — never a silent empty password.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from django.conf import settings
from django.db import models

PREFIX = "sealed:v1:"
_CONTEXT = b"sonoreview.secrets.v1:"


class SecretUnreadable(ValueError):
    """A stored secret that none of the configured keys can open."""


class UnreadableSecret(str):
    """What a sealed value reads back as when no key opens it: empty, but remembers the sealed
    text (saving the row again keeps it) and why it could not be opened."""

    sealed: str

    def __new__(cls, sealed: str) -> UnreadableSecret:
        obj = super().__new__(cls, "")
        obj.sealed = sealed
        return obj

    def reason(self, what: str) -> str:
        return (
            f"the stored {what} cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS "
            "(the key was changed without keeping the old one as a fallback): enter it again "
            "in the admin"
        )


def _fernet_for(secret_key: str) -> Any:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(_CONTEXT + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> Any:
    from cryptography.fernet import MultiFernet

    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(k) for k in keys])


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(plaintext: str) -> str:
    """The sealed form of ``plaintext`` (empty stays empty: nothing to hide). Pure apart from
    reading the settings' keys."""
    if not plaintext:
        return ""
    return PREFIX + _keys().encrypt(plaintext.encode()).decode("ascii")


def unseal(stored: str) -> str:
    """The plaintext of a stored value; an :class:`UnreadableSecret` when no key opens it.
    Values stored before sealing existed (no prefix) are returned as they are."""
    from cryptography.fernet import InvalidToken

    if not is_sealed(stored):
        return stored
    try:
        return _keys().decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return UnreadableSecret(stored)


class SealedTextField(models.TextField):
    """A text column holding a secret: sealed on the way in, opened on the way out."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else unseal(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if isinstance(value, UnreadableSecret):
            return value.sealed  # untouched: it may open again once the old key is restored
        if not value or is_sealed(value):
            return value
        return seal(value)

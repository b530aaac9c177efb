"""Checks on registry names, aliases, versions and tags."""

from __future__ import annotations

import getpass
import re
from typing import Any

from loopml.errors import InvalidInput

__all__ = [
    "default_user",
    "validate_alias",
    "validate_model_name",
    "validate_tag",
    "validate_text",
    "validate_user",
    "validate_version",
]

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 8000
MAX_TEXT_LENGTH = 65_000
MAX_USER_LENGTH = 256

# A name travels inside ``models:/<name>/<version>`` and ``models:/<name>@<alias>`` URIs.
_BAD_NAME = re.compile(r"[/@\x00-\x1f\x7f]")
_ALIAS = re.compile(r"[\w\-]+")
_VERSION_LIKE = re.compile(r"[vV]\d+")
_TAG_KEY = re.compile(r"[\w./ \-]+")
_DIGITS = re.compile(r"[0-9]{1,10}")


def validate_model_name(name: Any) -> str:
    """A registered model name: 1–256 characters, no ``/``, ``@`` or control characters."""
    if not isinstance(name, str):
        raise InvalidInput(f"model name must be a string, got {type(name).__name__}")
    if not name.strip() or len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidInput(f"model name must have 1 to {MAX_MODEL_NAME_LENGTH} characters")
    if _BAD_NAME.search(name) or name != name.strip() or name in (".", ".."):
        raise InvalidInput(
            f"model name {name!r} may not be '.' or '..', nor contain '/', '@', control "
            "characters, or leading or trailing spaces"
        )
    return name


def default_user() -> str:
    """The login name of this process's user ('' when there is none, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name: stay anonymous
        return ""


def validate_user(user_id: Any) -> str:
    """A user id as recorded in the history: this process's user when None."""
    if user_id is None:
        return default_user()
    if not isinstance(user_id, str) or len(user_id) > MAX_USER_LENGTH or "\x00" in user_id:
        raise InvalidInput(f"user_id must be a string of at most {MAX_USER_LENGTH} characters")
    return user_id


def validate_alias(alias: Any) -> str:
    """An alias: letters, digits, ``_`` and ``-``; not ``latest`` nor a version like ``v3``."""
    if not isinstance(alias, str):
        raise InvalidInput(f"alias must be a string, got {type(alias).__name__}")
    if not alias or len(alias) > MAX_ALIAS_LENGTH or not _ALIAS.fullmatch(alias):
        raise InvalidInput(
            f"alias {alias!r} must be 1 to {MAX_ALIAS_LENGTH} letters, digits, '_' or '-'"
        )
    if alias.lower() == "latest" or _VERSION_LIKE.fullmatch(alias):
        raise InvalidInput(f"alias {alias!r} is reserved: it reads as a version reference")
    return alias


def validate_version(version: Any) -> int:
    """A version number: a positive integer, or its decimal string."""
    if isinstance(version, bool):
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    if isinstance(version, int):
        value = version
    elif isinstance(version, str) and _DIGITS.fullmatch(version.strip()):
        value = int(version.strip())
    else:
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    if not 1 <= value < 2**31:
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    return value


def validate_tag(key: Any, value: Any) -> tuple[str, str]:
    """A tag key (MLflow's key characters, at most 250) and its string value."""
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY_LENGTH:
        raise InvalidInput(f"tag key must be a string of 1 to {MAX_TAG_KEY_LENGTH} characters")
    if not _TAG_KEY.fullmatch(key):
        raise InvalidInput(
            f"tag key {key!r} may only hold letters, digits, '_', '-', '.', ' ' and '/'"
        )
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(f"tag {key!r}: value longer than {MAX_TAG_VALUE_LENGTH} characters")
    return key, text


def validate_text(value: Any, field: str) -> str:
    """A free-text field (description, reason): a string of bounded length."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_TEXT_LENGTH} characters")
    if "\x00" in value:
        raise InvalidInput(f"{field} may not contain NUL characters")
    return value

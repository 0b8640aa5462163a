"""Checks shared by the content modules for the plain fields a request carries.

Each takes the raw JSON value (anything), returns it cleaned or raises :class:`Invalid`
naming the field, so a bad input never reaches the store (DESIGN §4).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from accounts.errors import Invalid


def clean_line(value: Any, *, field: str, longest: int, required: bool = True) -> str:
    """One line of text (a title): whitespace collapsed, no control characters."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid("a string", field=field)
    text = " ".join(value.split())
    if any(not ch.isprintable() for ch in text):
        raise Invalid("no control characters", field=field)
    if required and not text:
        raise Invalid("cannot be blank", field=field)
    if len(text) > longest:
        raise Invalid(f"at most {longest} characters", field=field)
    return text


def clean_text(value: Any, *, field: str, longest: int, required: bool = False) -> str:
    """Free text (a caption, a paragraph): line breaks kept, other control characters not."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid("a string", field=field)
    text = value.replace("\r\n", "\n").strip()
    if any(not ch.isprintable() and ch not in "\n\t" for ch in text):
        raise Invalid("no control characters", field=field)
    if required and not text:
        raise Invalid("cannot be blank", field=field)
    if len(text) > longest:
        raise Invalid(f"at most {longest} characters", field=field)
    return text


def check_int(value: Any, *, field: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("a whole number", field=field)
    if not least <= value <= most:
        raise Invalid(f"between {least} and {most}", field=field)
    return value


def check_list(value: Any, *, field: str, most: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("a list", field=field)
    if len(value) > most:
        raise Invalid(f"at most {most} items", field=field)
    return value


def check_object(value: Any, *, field: str, allowed: set[str]) -> dict[str, Any]:
    """A JSON object with no keys beyond ``allowed``: an unknown key is a typo to report."""
    if not isinstance(value, dict):
        raise Invalid("an object", field=field)
    for key in value:
        if key not in allowed:
            where = f"{field}.{key}" if field else str(key)
            raise Invalid(f"unknown field {key!r}", code="unknown_field", field=where)
    return value


def parse_time(value: Any, *, field: str) -> datetime:
    """An RFC 3339 time with its offset (a time without one is ambiguous), as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise Invalid("an RFC 3339 time, e.g. 2026-11-26T08:00:00Z", field=field) from exc
    else:
        raise Invalid("an RFC 3339 time, e.g. 2026-11-26T08:00:00Z", field=field)
    if moment.tzinfo is None:
        raise Invalid("a time needs its offset (Z or ±hh:mm)", field=field)
    return moment.astimezone(UTC)

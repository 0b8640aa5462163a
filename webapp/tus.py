"""The tus 1.0 wire format (https://tus.io/protocols/resumable-upload): header names and the
parsing and encoding of their values. Pure functions, no I/O; a malformed value is a 400
problem that names its header."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from email.utils import format_datetime

from content.uploads import CHECKSUM_ALGORITHMS, Checksum
from webapp.problems import Problem, bad_request

VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "termination", "checksum", "expiration")
OFFSET_STREAM = "application/offset+octet-stream"
RESUMABLE = "Tus-Resumable"
TUS_VERSION = "Tus-Version"
TUS_EXTENSION = "Tus-Extension"
TUS_MAX_SIZE = "Tus-Max-Size"
TUS_CHECKSUM_ALGORITHM = "Tus-Checksum-Algorithm"
UPLOAD_LENGTH = "Upload-Length"
UPLOAD_OFFSET = "Upload-Offset"
UPLOAD_METADATA = "Upload-Metadata"
UPLOAD_CHECKSUM = "Upload-Checksum"
UPLOAD_EXPIRES = "Upload-Expires"
METHOD_OVERRIDE = "X-HTTP-Method-Override"
MAX_METADATA_CHARS = 8192
MAX_METADATA_PAIRS = 32
MAX_COUNT = 2**63 - 1  # Upload-Length and Upload-Offset fit a signed 64-bit integer


def check_version(value: str | None) -> None:
    """Every request but OPTIONS names the protocol version it speaks; a server that does not
    speak it answers 412 with the versions it does, and does nothing else."""
    if value != VERSION:
        said = "no Tus-Resumable header" if value is None else f"Tus-Resumable {value!r}"
        problem = Problem(
            412,
            "tus_version_unsupported",
            "Precondition failed",
            f"this server speaks tus {VERSION}; the request sent {said}",
            field=RESUMABLE,
        )
        problem.headers[TUS_VERSION] = VERSION
        raise problem


def parse_count(value: str | None, header: str) -> int | None:
    """A header holding a number of bytes: ASCII digits only (no sign, no spaces)."""
    if value is None:
        return None
    # The length check comes first: int() refuses numbers of over 4,300 digits with an error.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_COUNT:
        raise bad_request(
            "invalid_header", f"{header} is a whole number of bytes, not {value!r}", field=header
        )
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``key base64value,key2 base64value2,key3``: unique keys without spaces or commas, and
    standard base64 values, which must hold UTF-8 text here (a bare key has an empty value)."""
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA_CHARS:
        raise _bad_metadata(f"it is longer than {MAX_METADATA_CHARS} characters")
    pairs = value.split(",")
    if len(pairs) > MAX_METADATA_PAIRS:
        raise _bad_metadata(f"it holds more than {MAX_METADATA_PAIRS} pairs")
    out: dict[str, str] = {}
    for pair in pairs:
        key, _, encoded = pair.strip().partition(" ")
        if not key or not key.isascii() or not key.isprintable() or " " in encoded:
            raise _bad_metadata(f"{pair.strip()!r} is not 'key base64value'")
        if key in out:
            raise _bad_metadata(f"the key {key!r} is given twice")
        try:
            out[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _bad_metadata(f"the value of {key!r} is not base64 of UTF-8 text") from None
    return out


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )


def _bad_metadata(why: str) -> Problem:
    return bad_request(
        "invalid_metadata", f"{UPLOAD_METADATA} is malformed: {why}", field=UPLOAD_METADATA
    )


def parse_checksum(value: str | None) -> Checksum | None:
    """``<algorithm> <base64 digest>`` (checksum extension), or ``None`` when not sent."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        supported = ", ".join(CHECKSUM_ALGORITHMS)
        raise bad_request(
            "checksum_algorithm_unsupported",
            f"{algorithm!r} is not a supported checksum algorithm; use one of {supported}",
            field=UPLOAD_CHECKSUM,
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise bad_request(
            "invalid_checksum",
            f"{UPLOAD_CHECKSUM} is '{algorithm} <base64 of the chunk's {algorithm} digest>'",
            field=UPLOAD_CHECKSUM,
        )
    return Checksum(algorithm, digest)


def http_date(moment: datetime) -> str:
    """The date format of Upload-Expires (RFC 9110 IMF-fixdate)."""
    return format_datetime(moment, usegmt=True)


def is_offset_stream(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == OFFSET_STREAM

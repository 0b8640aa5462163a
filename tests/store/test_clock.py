"""Timestamps as the platform writes them: RFC 3339, UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from store.clock import parse_rfc3339, rfc3339, utc_now


def test_rfc3339_is_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 26, 8, 32, 23, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert rfc3339(moment) == "2026-11-26T00:32:23.123Z"


def test_parse_round_trips_and_is_utc() -> None:
    parsed = parse_rfc3339("2026-11-26T00:32:23.123Z")
    assert parsed == datetime(2026, 11, 26, 0, 32, 23, 123000, tzinfo=UTC)
    assert rfc3339(parsed) == "2026-11-26T00:32:23.123Z"
    assert parse_rfc3339("2026-11-26T08:32:23.123+08:00") == parsed


def test_text_order_is_time_order() -> None:
    earlier = utc_now()
    later = earlier + timedelta(milliseconds=1)
    assert earlier.tzinfo is not None
    assert rfc3339(earlier) < rfc3339(later)

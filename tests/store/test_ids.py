"""Ids: time-sortable, URL-safe, unique (DESIGN §4)."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from store.ids import new_id

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_SHAPE = re.compile(r"fan_[0-9a-hjkmnp-tv-z]{26}")


def _millis(id: str) -> int:
    value = 0
    for char in id.split("_", 1)[1][:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value


def test_an_id_is_its_prefix_then_26_url_safe_characters() -> None:
    id = new_id("fan")
    assert _SHAPE.fullmatch(id), id
    assert quote(id, safe="") == id


def test_an_id_carries_the_millisecond_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    id = new_id("fan")
    after = time.time_ns() // 1_000_000
    assert before <= _millis(id) <= after


def test_ten_thousand_quick_ids_are_unique_and_already_in_order() -> None:
    made = [new_id("fan") for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(_SHAPE.fullmatch(id) for id in made)


def test_ids_made_in_a_later_millisecond_sort_after() -> None:
    first = new_id("fan")
    start = _millis(first)
    # Spin (not sleep) until the clock moves on: the next id must start a new millisecond.
    while time.time_ns() // 1_000_000 <= start:
        pass
    later = new_id("fan")
    assert _millis(later) > start
    assert later > first

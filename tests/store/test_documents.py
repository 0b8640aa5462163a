"""The pure helpers every engine shares: updates, upsert seeds, sorts and keyset cursors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from store.documents import (
    apply_update,
    check_field,
    decode_cursor,
    encode_cursor,
    full_sort,
    get_path,
    keyset_filter,
    upsert_seed,
)
from store.port import Doc, InvalidCursorError, InvalidQueryError, SortKey

# -- field paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["a", "_a", "a1", "a.b", "a_b.c_d.e9", "id"])
def test_plain_dotted_names_are_fields(path: str) -> None:
    assert check_field(path) == path


@pytest.mark.parametrize(
    "path", ["", "1a", "a.", ".a", "a..b", "$a", "a.$b", "a-b", "a b", "a'", "a;--", "é", "a\n"]
)
def test_anything_else_is_refused(path: str) -> None:
    with pytest.raises(InvalidQueryError):
        check_field(path)


def test_get_path_tells_missing_from_null() -> None:
    doc = {"a": {"b": None, "c": 1}, "d": 5}
    assert get_path(doc, "a.b") == (True, None)
    assert get_path(doc, "a.c") == (True, 1)
    assert get_path(doc, "a.x") == (False, None)
    assert get_path(doc, "d.x") == (False, None)


# -- apply_update -----------------------------------------------------------------------------


def test_apply_update_returns_a_new_document_and_leaves_the_old_one() -> None:
    doc: Doc = {"id": "a", "tags": ["x"], "p": {"n": 1}}
    out = apply_update(doc, {"$push": {"tags": "y"}, "$set": {"p.n": 2}})
    assert out == {"id": "a", "tags": ["x", "y"], "p": {"n": 2}}
    assert doc == {"id": "a", "tags": ["x"], "p": {"n": 1}}


def test_set_creates_missing_parents() -> None:
    assert apply_update({"id": "a"}, {"$set": {"p.q.r": 1}}) == {"id": "a", "p": {"q": {"r": 1}}}


def test_set_stores_a_copy_of_its_value() -> None:
    value = {"k": [1]}
    out = apply_update({"id": "a"}, {"$set": {"v": value}, "$push": {"l": value}})
    value["k"].append(2)
    assert out == {"id": "a", "v": {"k": [1]}, "l": [{"k": [1]}]}


def test_unset_removes_and_ignores_what_is_missing() -> None:
    doc: Doc = {"id": "a", "x": 1, "p": {"q": 1, "r": 2}}
    out = apply_update(doc, {"$unset": {"x": "", "p.q": "", "nope": "", "no.such.path": ""}})
    assert out == {"id": "a", "p": {"r": 2}}


def test_inc_starts_from_zero_and_keeps_the_number_type() -> None:
    out = apply_update({"id": "a", "n": 1, "f": 0.5}, {"$inc": {"n": 2, "f": 0.25, "new": -3}})
    assert out == {"id": "a", "n": 3, "f": 0.75, "new": -3}
    assert isinstance(out["n"], int)


@pytest.mark.parametrize(
    ("doc", "update"),
    [
        ({"id": "a"}, {"$inc": {"n": "1"}}),
        ({"id": "a"}, {"$inc": {"n": True}}),
        ({"id": "a", "n": "1"}, {"$inc": {"n": 1}}),
        ({"id": "a", "n": False}, {"$inc": {"n": 1}}),
        ({"id": "a", "n": 1}, {"$push": {"n": 1}}),
        ({"id": "a", "n": 1}, {"$set": {"n.m": 1}}),
        ({"id": "a", "n": 1}, {"$unset": {"n.m": ""}}),
        ({"id": "a"}, {"$set": {"id": "b"}}),
        ({"id": "a"}, {"$inc": {"id": 1}}),
        ({"id": "a"}, {"$unset": {"id": ""}}),
        ({"id": "a"}, {}),
        ({"id": "a"}, {"$rename": {"x": "y"}}),
        ({"id": "a"}, {"x": 1}),
        ({"id": "a"}, {"$set": [("x", 1)]}),
        ({"id": "a"}, {"$set": {"x'); --": 1}}),
    ],
)
def test_a_bad_update_is_refused(doc: Doc, update: dict[str, Any]) -> None:
    with pytest.raises(InvalidQueryError):
        apply_update(doc, update)


def test_setting_the_id_to_itself_is_allowed() -> None:
    assert apply_update({"id": "a"}, {"$set": {"id": "a", "x": 1}}) == {"id": "a", "x": 1}


def test_set_on_insert_applies_only_when_inserting() -> None:
    update = {"$setOnInsert": {"id": "a", "since": 1}, "$inc": {"n": 1}}
    assert apply_update({"id": "a", "n": 1}, update) == {"id": "a", "n": 2}
    assert apply_update({}, update, inserting=True) == {"id": "a", "since": 1, "n": 1}


# -- upsert_seed ------------------------------------------------------------------------------


def test_an_upsert_seed_keeps_only_plain_equalities() -> None:
    seed = upsert_seed(
        {
            "account_id": "acc",
            "fan_id": {"$eq": "f1"},
            "owner.kind": "fan",
            "points": {"$gte": 5},
            "tier": {"$in": ["gold"]},
            "$or": [{"x": 1}],
            "flag": False,
            "gone": None,
        }
    )
    assert seed == {
        "account_id": "acc",
        "fan_id": "f1",
        "owner": {"kind": "fan"},
        "flag": False,
        "gone": None,
    }


def test_an_upsert_seed_copies_its_values() -> None:
    value = {"deep": [1]}
    filter = {"meta": value}
    seed = upsert_seed(filter)
    value["deep"].append(2)
    assert seed == {"meta": {"deep": [1]}}


def test_an_upsert_seed_checks_its_fields() -> None:
    with pytest.raises(InvalidQueryError):
        upsert_seed({"a'); --": 1})


# -- full_sort --------------------------------------------------------------------------------


def test_full_sort_appends_the_id_in_the_last_direction() -> None:
    assert full_sort([("rank", -1)]) == [("rank", -1), ("id", -1)]
    assert full_sort([("rank", -1), ("at", 1)]) == [("rank", -1), ("at", 1), ("id", 1)]
    assert full_sort([]) == [("id", 1)]
    assert full_sort([("rank", 1), ("id", -1)]) == [("rank", 1), ("id", -1)]


@pytest.mark.parametrize("sort", [[("rank", 0)], [("rank", "asc")], [("a b", 1)], [("", 1)]])
def test_full_sort_refuses_bad_keys(sort: Any) -> None:
    with pytest.raises(InvalidQueryError):
        full_sort(sort)


# -- cursors ----------------------------------------------------------------------------------

SORT: list[SortKey] = [("rank", -1), ("meta.at", 1), ("flag", 1), ("id", 1)]


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "p1", "rank": 3, "meta": {"at": "2026-01-01T00:00:00.000Z"}, "flag": True},
        {"id": "p2", "rank": 2.5, "meta": {"at": "新品 / ?&="}, "flag": False},
        {"id": "p3"},
        {"id": "p4", "rank": None, "meta": None},
    ],
)
def test_a_cursor_round_trips_its_sort_values(doc: Doc) -> None:
    cursor = encode_cursor(doc, SORT)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), "cursors go in URLs unescaped"
    expected = [get_path(doc, field)[1] for field, _ in SORT]
    assert decode_cursor(cursor, SORT) == expected


def test_a_cursor_decodes_only_for_its_own_sort() -> None:
    cursor = encode_cursor({"id": "p1", "rank": 3}, [("rank", 1), ("id", 1)])
    for other in ([("rank", -1), ("id", -1)], [("at", 1), ("id", 1)], [("rank", 1)]):
        with pytest.raises(InvalidCursorError):
            decode_cursor(cursor, list(other))  # type: ignore[arg-type]


def _forge(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_forged_or_broken_cursors_are_refused() -> None:
    sort: list[SortKey] = [("rank", 1), ("id", 1)]
    good = encode_cursor({"id": "p1", "rank": 3}, sort)
    tag = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))[0]
    assert decode_cursor(_forge([tag, [4, "p9"]]), sort) == [4, "p9"]
    for bad in [
        "garbage!",
        "",
        good[:-3],
        _forge({"tag": tag}),
        _forge([tag]),
        _forge([tag, [4]]),
        _forge([tag, [4, "p9", 5]]),
        _forge([tag, "ab"]),
        _forge([tag, [{"$gt": 1}, "p9"]]),
        _forge([tag, [[1], "p9"]]),
        _forge(["0" * 8, [4, "p9"]]),
    ]:
        with pytest.raises(InvalidCursorError):
            decode_cursor(bad, sort)


# -- keyset_filter ----------------------------------------------------------------------------


def test_keyset_after_a_value_ascending() -> None:
    sort: list[SortKey] = [("rank", 1), ("id", 1)]
    assert keyset_filter({"kind": "post"}, sort, [2, "b"]) == {
        "$and": [
            {"kind": "post"},
            {"$or": [{"rank": {"$gt": 2}}, {"$and": [{"rank": 2}, {"id": {"$gt": "b"}}]}]},
        ]
    }


def test_keyset_after_a_value_descending_includes_the_missing() -> None:
    sort: list[SortKey] = [("rank", -1), ("id", -1)]
    assert keyset_filter({}, sort, [2, "b"]) == {
        "$and": [
            {},
            {
                "$or": [
                    {"$or": [{"rank": {"$lt": 2}}, {"rank": None}]},
                    {"$and": [{"rank": 2}, {"id": {"$lt": "b"}}]},
                ]
            },
        ]
    }


def test_keyset_after_a_missing_value() -> None:
    up: list[SortKey] = [("rank", 1), ("id", 1)]
    assert keyset_filter({}, up, [None, "b"]) == {
        "$and": [
            {},
            {"$or": [{"rank": {"$ne": None}}, {"$and": [{"rank": None}, {"id": {"$gt": "b"}}]}]},
        ]
    }
    down: list[SortKey] = [("rank", -1), ("id", -1)]
    assert keyset_filter({}, down, [None, "b"]) == {
        "$and": [{}, {"$or": [{"$and": [{"rank": None}, {"id": {"$lt": "b"}}]}]}]
    }


def test_keyset_with_mixed_directions() -> None:
    sort: list[SortKey] = [("rank", 1), ("at", -1), ("id", -1)]
    assert keyset_filter({}, sort, [1, 5, "c"]) == {
        "$and": [
            {},
            {
                "$or": [
                    {"rank": {"$gt": 1}},
                    {"$and": [{"rank": 1}, {"$or": [{"at": {"$lt": 5}}, {"at": None}]}]},
                    {"$and": [{"rank": 1}, {"at": 5}, {"id": {"$lt": "c"}}]},
                ]
            },
        ]
    }


@pytest.mark.parametrize("value", [10**30, -(10**30), float("nan"), float("inf"), [1], {"a": 1}])
def test_a_cursor_holding_values_no_engine_can_compare_is_refused(value: object) -> None:
    keys = full_sort([("at", -1)])
    issued = encode_cursor({"id": "x", "at": "2026-01-01"}, keys)
    tag, _ = json.loads(base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4)))
    raw = json.dumps([tag, [value, "x"]]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor, keys)

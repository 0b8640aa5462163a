"""Pure helpers shared by every engine: field paths, updates, keyset cursors. No I/O."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from typing import Any

from store.port import (
    Doc,
    Filter,
    InvalidCursorError,
    InvalidQueryError,
    Sort,
    SortKey,
    Update,
)

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
UPDATE_OPERATORS = ("$set", "$unset", "$inc", "$push", "$setOnInsert")


def check_field(path: str) -> str:
    """Field paths are spliced into engine queries, so only plain dotted names are allowed."""
    if not isinstance(path, str) or not _FIELD.fullmatch(path):
        raise InvalidQueryError(f"unsupported field path {path!r}")
    return path


def get_path(doc: Doc, path: str) -> tuple[bool, Any]:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _parent(doc: Doc, path: str, create: bool) -> tuple[dict[str, Any] | None, str]:
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            if not create:
                return None, parts[-1]
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise InvalidQueryError(f"{path!r} runs through a non-object value")
    return node, parts[-1]


def check_update(update: Update) -> Update:
    """Refuse a malformed update before looking for matches, as MongoDB does."""
    if not isinstance(update, dict) or not update:
        raise InvalidQueryError("an update is a non-empty object")
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            raise InvalidQueryError(f"update must use only {', '.join(UPDATE_OPERATORS)}")
        if not isinstance(fields, dict):
            raise InvalidQueryError(f"{op} takes an object")
        for path, value in fields.items():
            check_field(path)
            if op == "$inc" and not _is_number(value):
                raise InvalidQueryError(f"$inc needs numbers at {path!r}")
    return update


def apply_update(doc: Doc, update: Update, *, inserting: bool = False) -> Doc:
    """Return a copy of ``doc`` with ``update`` applied (``$setOnInsert`` only when inserting)."""
    check_update(update)
    out = copy.deepcopy(doc)
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, value in fields.items():
            if path == "id" and op != "$setOnInsert" and value != doc.get("id"):
                raise InvalidQueryError("the id of a document cannot change")
            parent, key = _parent(out, path, create=op != "$unset")
            if op in ("$set", "$setOnInsert"):
                assert parent is not None
                parent[key] = copy.deepcopy(value)
            elif op == "$unset":
                if parent is not None:
                    parent.pop(key, None)
            elif op == "$inc":
                assert parent is not None
                current = parent.get(key, 0)
                if not _is_number(value) or not _is_number(current):
                    raise InvalidQueryError(f"$inc needs numbers at {path!r}")
                parent[key] = current + value
            elif op == "$push":
                assert parent is not None
                current = parent.setdefault(key, [])
                if not isinstance(current, list):
                    raise InvalidQueryError(f"$push needs an array at {path!r}")
                current.append(copy.deepcopy(value))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def upsert_seed(filter: Filter) -> Doc:
    """The document an upsert starts from: the filter's plain equality terms."""
    seed: Doc = {}
    for key, value in filter.items():
        if key.startswith("$"):
            continue
        if isinstance(value, dict) and any(k.startswith("$") for k in value):
            if set(value) == {"$eq"}:
                value = value["$eq"]
            else:
                continue
        parent, leaf = _parent(seed, check_field(key), create=True)
        assert parent is not None
        parent[leaf] = copy.deepcopy(value)
    return seed


def full_sort(sort: Sort) -> list[SortKey]:
    """The sort with ``id`` appended as the tie-breaker, so keyset order is total."""
    keys: list[SortKey] = [(check_field(f), d) for f, d in sort]
    for _, direction in keys:
        if direction not in (1, -1):
            raise InvalidQueryError("sort direction must be 1 or -1")
    if not keys or keys[-1][0] != "id":
        keys.append(("id", keys[-1][1] if keys else 1))
    return keys


def _sort_tag(sort: list[SortKey]) -> str:
    raw = ",".join(f"{f}:{d}" for f, d in sort).encode()
    return hashlib.sha256(raw).hexdigest()[:8]


def encode_cursor(doc: Doc, sort: list[SortKey]) -> str:
    values = [get_path(doc, field)[1] for field, _ in sort]
    raw = json.dumps([_sort_tag(sort), values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: list[SortKey]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("the cursor is not one this server issued") from exc
    if tag != _sort_tag(sort) or not isinstance(values, list) or len(values) != len(sort):
        raise InvalidCursorError("the cursor belongs to a different listing")
    for value in values:
        if value is not None and not storable_scalar(value):
            raise InvalidCursorError("the cursor is not one this server issued")
    return values


INT64 = (-(2**63), 2**63 - 1)


def storable_scalar(value: Any) -> bool:
    """A string, or a number every engine can hold: a 64-bit integer or a finite float."""
    if isinstance(value, str):
        return True
    if isinstance(value, int):
        return INT64[0] <= value <= INT64[1]
    if isinstance(value, float):
        return math.isfinite(value)
    return False


def keyset_filter(filter: Filter, sort: list[SortKey], values: list[Any]) -> Filter:
    """Items strictly after ``values`` in ``sort`` order, as a port filter.

    A missing or null value sorts before every other value (as in MongoDB and SQLite), so it
    cannot be compared with ``$gt``/``$lt``: "after null" ascending is "not null", descending
    nothing is after null, and everything descending after a value also includes the nulls.
    """
    branches: list[Filter] = []
    for i, (field, direction) in enumerate(sort):
        after = _after(field, direction, values[i])
        if after is None:
            continue
        terms: list[Filter] = [{f: values[j]} for j, (f, _) in enumerate(sort[:i])]
        terms.append(after)
        branches.append(terms[0] if len(terms) == 1 else {"$and": terms})
    if not branches:
        return {"$and": [filter, {"id": {"$in": []}}]}
    return {"$and": [filter, {"$or": branches}]}


def _after(field: str, direction: int, value: Any) -> Filter | None:
    if direction == 1:
        return {field: {"$ne": None}} if value is None else {field: {"$gt": value}}
    if value is None:
        return None
    if field == "id":  # every document has one
        return {field: {"$lt": value}}
    return {"$or": [{field: {"$lt": value}}, {field: None}]}

"""Port filters and sorts as SQLite SQL over JSON documents. Pure: no connection, no I/O.

A document is a row ``(id, doc)``; a field is ``json_extract(doc, '$.path')``. MongoDB
compares values of one type only, so each comparison also checks the stored JSON type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.documents import COMPARISONS, check_field, storable_scalar
from store.port import Filter, InvalidQueryError, Sort


def column(field: str) -> str:
    if field == "id":
        return "id"
    return f"json_extract(doc, '$.{check_field(field)}')"


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if not storable_scalar(value):
        raise InvalidQueryError(f"{value!r} is outside what a filter can compare")
    return value


def _kind(value: Any) -> str:
    """Mongo compares values of one type only; this is the type class a filter value selects."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    raise InvalidQueryError(f"cannot compare with a value of type {type(value).__name__}")


# json_extract turns true into 1 and an object into its JSON text, so a comparison alone would
# let {"n": 1} match true and {"s": {"$gt": "a"}} match objects: each one also checks json_type.
_JSON_TYPES = {"bool": "('true','false')", "number": "('integer','real')", "text": "('text')"}


def _guard(field: str, kind: str) -> str:
    if field == "id":
        return "1" if kind == "text" else "0"
    return f"IFNULL(json_type(doc, '$.{check_field(field)}'), '') IN {_JSON_TYPES[kind]}"


def where(filter: Filter, params: list[Any]) -> str:
    """Translate a port filter into SQL, appending bound values to ``params``."""
    if not isinstance(filter, dict):
        raise InvalidQueryError("a filter is an object")
    clauses: list[str] = []
    for key, cond in filter.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InvalidQueryError(f"{key} takes a non-empty list of filters")
            parts = [f"({where(sub, params)})" for sub in cond]
            # Parenthesised as a whole: `x = ? AND (a) OR (b)` would read as `(x AND a) OR b`.
            clauses.append("(" + (" AND " if key == "$and" else " OR ").join(parts) + ")")
            continue
        if key.startswith("$"):
            raise InvalidQueryError(f"unsupported operator {key}")
        expr = column(key)
        ops = cond if isinstance(cond, dict) and any(k.startswith("$") for k in cond) else None
        if ops is None:
            ops = {"$eq": cond}
        for op, value in ops.items():
            clauses.append(_comparison(expr, key, op, value, params))
    return " AND ".join(clauses) if clauses else "1"


def _comparison(expr: str, field: str, op: str, value: Any, params: list[Any]) -> str:
    if op not in COMPARISONS:
        raise InvalidQueryError(f"unsupported operator {op} on {field!r}")
    if op == "$exists":
        # json_type is 'null' for a stored null, NULL only when the field is missing.
        present = "1" if field == "id" else f"json_type(doc, '$.{field}') IS NOT NULL"
        return present if value else f"NOT ({present})"
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple):
            raise InvalidQueryError(f"{op} takes a list")
        member = _membership(expr, field, value, params)
        return member if op == "$in" else f"NOT {member}"
    if value is None:
        if op == "$eq":
            return f"{expr} IS NULL"
        if op == "$ne":
            return f"{expr} IS NOT NULL"
        raise InvalidQueryError(f"{op} cannot compare with null")
    if isinstance(value, dict | list):
        raise InvalidQueryError(f"cannot compare {field!r} with an object or array")
    guard = _guard(field, _kind(value))
    params.append(_param(value))
    if op == "$ne":
        return f"NOT ({expr} IS ? AND {guard})"
    sql_op = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
    return f"({expr} {sql_op} ? AND {guard})"


def _membership(expr: str, field: str, values: Sequence[Any], params: list[Any]) -> str:
    """``$in`` as SQL that is never NULL, so ``NOT`` of it is ``$nin``; null matches missing."""
    by_kind: dict[str, list[Any]] = {}
    for value in values:
        if isinstance(value, dict | list):
            raise InvalidQueryError(f"cannot compare {field!r} with an object or array")
        if value is not None:
            by_kind.setdefault(_kind(value), []).append(value)
    parts = [f"{expr} IS NULL"] if any(v is None for v in values) else []
    for kind, members in by_kind.items():
        params.extend(_param(v) for v in members)
        marks = ",".join("?" * len(members))
        parts.append(f"({expr} IN ({marks}) AND {_guard(field, kind)})")
    return "(" + " OR ".join(parts) + ")" if parts else "(0)"


def order(sort: Sort) -> str:
    if not sort:
        return "id"
    if any(d not in (1, -1) for _, d in sort):
        raise InvalidQueryError("sort direction must be 1 or -1")
    return ", ".join(f"{column(f)} {'ASC' if d == 1 else 'DESC'}" for f, d in sort)


def table(name: str) -> str:
    check_field(name)
    if "." in name:
        raise InvalidQueryError(f"bad collection name {name!r}")
    return f'"c_{name}"'

"""The OpenAPI 3.1 document, generated from the same endpoint table that serves the API."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp.api import IDEMPOTENCY_HEADER, Endpoint
from webapp.auth import CSRF_HEADER, SESSION_COOKIE, Kind
from webapp.schemas import HealthOut

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": "string", "description": "the field, header or parameter at fault"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
REASONS = {
    400: "Malformed request (bad JSON, bad cursor)",
    401: "Missing, expired, revoked or forged credentials",
    403: "Not allowed for this caller, role or account; or a missing CSRF token",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Body is not application/json",
    422: "A field is not valid",
    428: "An Idempotency-Key header is required",
    429: "Too many attempts; wait the Retry-After seconds",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_SECURITY: dict[Kind, dict[str, list[str]]] = {
    Kind.STAFF: {"staffSession": []},
    Kind.API_KEY: {"apiKey": []},
    Kind.FAN: {"fanToken": []},
}


def _error_statuses(endpoint: Endpoint) -> list[int]:
    # Every route reads its body under the size limit, even one that takes none.
    codes = set(endpoint.errors) | {401, 413}
    if endpoint.body is not None:
        codes |= {400, 415, 422}
    else:
        codes |= {422}  # a body sent to a route that takes none
    if endpoint.query is not None:
        codes |= {400, 422}
    if endpoint.idempotency != "none":
        codes |= {422}
    if endpoint.allow != frozenset({Kind.ANONYMOUS}):
        codes |= {403}
    if "{" in endpoint.path:
        codes |= {404}
    return sorted(codes)


def _service_paths(health: dict[str, Any]) -> dict[str, Any]:
    """The two routes outside the endpoint table, so that every route is in the document."""
    anyone: list[dict[str, list[str]]] = [{}]
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Whether the store, broker and media tools are usable",
                "tags": ["service"],
                "security": anyone,
                "responses": {
                    "200": {
                        "description": "All usable",
                        "content": {"application/json": {"schema": health}},
                    },
                    "503": {
                        "description": "A part is not usable (its name says which; the "
                        "server log says why)",
                        "content": {"application/json": {"schema": health}},
                    },
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["service"],
                "security": anyone,
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def build(endpoints: Sequence[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = []
    for e in endpoints:
        if e.body is not None:
            models.append((e.body, "validation"))
        if e.response is not None:
            models.append((e.response, "serialization"))
    models.append((HealthOut, "serialization"))
    keys, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, Any] = {}
    for e in endpoints:
        op: dict[str, Any] = {
            "operationId": e.operation_id,
            "summary": e.summary,
            "tags": [e.tag],
            "parameters": [],
            "responses": {},
        }
        if e.description:
            op["description"] = e.description
        for name in re.findall(r"{(\w+)}", e.path):
            op["parameters"].append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 200},
                }
            )
        if e.query is not None:
            for name, f in e.query.model_fields.items():
                schema = e.query.model_json_schema()["properties"][name]
                op["parameters"].append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": f.description or "",
                        "schema": schema,
                    }
                )
        if e.idempotency != "none":
            op["parameters"].append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": e.idempotency == "required",
                    "description": "a unique key per intended write; a retry with it returns the "
                    "first answer",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            )
        if Kind.STAFF in e.allow and e.method not in ("GET", "HEAD"):
            op["parameters"].append(
                {
                    "name": CSRF_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "with a session cookie: the session's csrf_token",
                    "schema": {"type": "string"},
                }
            )
        if not op["parameters"]:
            del op["parameters"]
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keys[(e.body, "validation")]}},
            }
        success: dict[str, Any] = {"description": "OK" if e.status < 300 else "Done"}
        if e.response is not None and e.status != 204:
            success["content"] = {
                "application/json": {"schema": keys[(e.response, "serialization")]}
            }
        op["responses"][str(e.status)] = success
        for code in _error_statuses(e):
            op["responses"][str(code)] = {
                "description": REASONS.get(code, "Error"),
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
            if code == 429:
                op["responses"][str(code)]["headers"] = RETRY_AFTER
        security = [_SECURITY[k] for k in sorted(e.allow) if k in _SECURITY]
        if Kind.ANONYMOUS in e.allow:
            security.append({})
        op["security"] = security
        paths.setdefault(e.path, {})[e.method.lower()] = op
    paths.update(_service_paths(keys[(HealthOut, "serialization")]))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The lifeaccount HTTP API. Errors are RFC 9457 problem details; "
            "lists paginate with an opaque cursor; points are integers.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a brand backend's API key (lak_…)",
                },
                "fanToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a fan token minted by the brand backend (laf_…)",
                },
                "staffSession": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }

"""RFC 9457 problem details: every failure the API gives, in one shape."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson
from starlette.responses import Response

from accounts.errors import DomainError

PROBLEM_TYPE_BASE = "https://lifeaccount.dev/errors/"
MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str


@dataclass
class Problem(Exception):
    """An error answer; raise it from transport code, or return :func:`problem_response`."""

    status: int
    code: str
    title: str
    detail: str
    field: str | None = None
    errors: list[FieldError] = dataclass_field(default_factory=list)
    headers: dict[str, str] = dataclass_field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.field is not None:
            out["field"] = self.field
        if self.errors:
            out["errors"] = [
                {"field": e.field, "code": e.code, "message": e.message} for e in self.errors
            ]
        return out

    @classmethod
    def from_domain(cls, error: DomainError) -> Problem:
        return cls(error.status, error.code, error.title, error.detail, field=error.field)


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    body = problem.body()
    if instance:
        body["instance"] = instance
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def bad_request(code: str, detail: str, *, field: str | None = None, status: int = 400) -> Problem:
    titles = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Not allowed",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict with the current state",
        413: "Request body too large",
        415: "Unsupported media type",
        422: "A field is not valid",
        428: "Precondition required",
    }
    return Problem(status, code, titles.get(status, "Error"), detail, field=field)

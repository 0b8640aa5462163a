"""Domain errors. Each carries what an RFC 9457 problem needs: status, code, detail, field.

The webapp turns them into ``application/problem+json``; the domain never builds responses.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.field = field


class Invalid(DomainError):
    status = 422
    code = "invalid_field"
    title = "A field is not valid"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"

    def __init__(self, noun: str, id: str, *, field: str | None = None) -> None:
        super().__init__(f"no {noun} with id {id!r}", code=f"{noun}_not_found", field=field)
        self.id = id


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"

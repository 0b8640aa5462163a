"""The route table's machinery: one ``Endpoint`` per operation drives the Starlette route, the
request checks (auth, CSRF, content type, size, JSON, schema, idempotency) and the OpenAPI
document, so what is documented is what is enforced.

Handlers stay thin: they get a parsed :class:`Call` and return a pydantic model (or a
:class:`Reply` when they need a status, headers or cookies of their own).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts.accounts import get_account
from accounts.errors import DomainError, NotFound
from accounts.staff import Role, role_of
from accounts.tokens import same
from store.port import DuplicateKeyError, InvalidCursorError
from webapp.auth import (
    ANONYMOUS,
    CSRF_HEADER,
    SAFE_METHODS,
    Caller,
    Kind,
    TooManyAttempts,
    identify,
)
from webapp.context import Services
from webapp.problems import FieldError, Problem, bad_request, problem_response

log = logging.getLogger("lifeaccount.api")

Handler = Callable[["Call"], Awaitable["BaseModel | Reply | Response"]]
ALL_CALLERS = frozenset(Kind)
STAFF_OR_KEY = frozenset({Kind.STAFF, Kind.API_KEY})
STAFF = frozenset({Kind.STAFF})
FAN = frozenset({Kind.FAN})
OWNER = frozenset({Role.OWNER})
OWNER_EDITOR = frozenset({Role.OWNER, Role.EDITOR})
ANY_ROLE = frozenset(Role)
ACCOUNT_PATH = "/api/v1/accounts/{account_id}"


def base_url(request: Request, configured: str) -> str:
    """The deployment's public URL: the configured one, else the one this request came to."""
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    allow: frozenset[Kind] = ALL_CALLERS
    roles: frozenset[Role] = frozenset()  # staff roles that may call it on the path's account
    idempotency: Literal["none", "optional", "required"] = "none"
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")


@dataclass
class Reply:
    model: BaseModel | None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    delete_cookies: list[str] = field(default_factory=list)


@dataclass
class Call:
    request: Request
    services: Services
    caller: Caller
    params: dict[str, str]
    body: Any
    query: Any
    idempotency_key: str | None

    @property
    def now(self) -> datetime:
        return self.services.now()


def json_response(
    model: BaseModel | None, status: int, headers: dict[str, str] | None = None
) -> Response:
    if model is None:
        return Response(status_code=status, headers=headers)
    body = orjson.dumps(model.model_dump(mode="json", exclude_unset=True))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def validation_problem(exc: ValidationError, prefix: str = "") -> Problem:
    errors = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"])
        name = f"{prefix}{path}" if path else (prefix.rstrip(".") or "body")
        kind = err["type"]
        if kind == "missing":
            message = f"'{name}' is required"
        elif kind == "extra_forbidden":
            message = f"'{name}' is not a field of this request; remove it"
        else:
            message = f"'{name}': {err['msg']}"
        errors.append(FieldError(name, kind, message))
    first = errors[0]
    return Problem(
        422,
        "invalid_field",
        "A field is not valid",
        "; ".join(e.message for e in errors[:5]),
        field=first.field,
        errors=errors,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
        raise bad_request(
            "body_too_large", f"the body is larger than {limit} bytes", field="body", status=413
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise bad_request(
                "body_too_large", f"the body is larger than {limit} bytes", field="body", status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"


async def parse_body(
    request: Request, model: type[BaseModel] | None, limit: int
) -> tuple[Any, bytes]:
    raw = await _read_body(request, limit)
    if model is None:
        if raw.strip() and raw.strip() != b"{}":
            raise bad_request(
                "unexpected_body", "this request takes no body; send none", field="body", status=422
            )
        return None, raw
    if not _is_json(request.headers.get("content-type")):
        raise bad_request(
            "unsupported_media_type",
            "send the body as JSON with 'Content-Type: application/json'",
            field="Content-Type",
            status=415,
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            "malformed_json", f"the body is not valid JSON: {exc}", field="body"
        ) from None
    if not isinstance(data, dict):
        raise bad_request(
            "invalid_field", "the body must be a JSON object", field="body", status=422
        )
    try:
        return model.model_validate_json(raw, strict=True), raw
    except ValidationError as exc:
        raise validation_problem(exc) from None


def parse_query(request: Request, model: type[BaseModel] | None) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise validation_problem(exc) from None


async def authorize(
    endpoint: Endpoint,
    request: Request,
    services: Services,
    caller: Caller,
    params: Mapping[str, str],
) -> Caller:
    """Refuse a caller this route does not take, before its body is read or parsed; return
    the caller the route acts for."""
    if (
        caller.kind is Kind.STAFF
        and request.method not in SAFE_METHODS
        and Kind.ANONYMOUS in endpoint.allow
        and not csrf_ok(request, caller)
    ):
        # A session cookie without its CSRF token carries no staff authority. Where anyone
        # may call (sign-up, log-in, accepting an invitation), the request goes on as an
        # anonymous one instead of failing because the browser happens to be logged in.
        caller = ANONYMOUS
    if caller.kind not in endpoint.allow:
        accepted = ", ".join(k.value.replace("_", " ") for k in sorted(endpoint.allow))
        if caller.kind is Kind.ANONYMOUS:
            raise Problem(
                401,
                "authentication_required",
                "Not authenticated",
                f"this route needs credentials: {accepted}",
                field="Authorization",
            )
        raise Problem(
            403,
            "wrong_credential",
            "Not allowed",
            f"a {caller.kind.value.replace('_', ' ')} cannot call this route; it takes: {accepted}",
            field="Authorization",
        )
    if caller.kind is Kind.STAFF and request.method not in SAFE_METHODS:
        if not csrf_ok(request, caller):
            raise Problem(
                403,
                "csrf_failed",
                "Not allowed",
                "send the session's csrf_token in the X-CSRF-Token header",
                field="X-CSRF-Token",
            )
    account_id = params.get("account_id")
    if account_id is None:
        return caller
    if caller.kind is Kind.API_KEY and caller.account_id != account_id:
        await _account_exists(services, account_id)
        raise Problem(
            403,
            "wrong_account",
            "Not allowed",
            "this API key belongs to another account",
            field="Authorization",
        )
    if caller.kind is Kind.STAFF and endpoint.roles:
        role = await role_of(services.store, account_id, caller.id)
        if role is None:
            await _account_exists(services, account_id)
            raise Problem(
                403,
                "not_staff",
                "Not allowed",
                "you are not staff of this account",
                field="account_id",
            )
        if role not in endpoint.roles:
            needed = " or ".join(sorted(r.value for r in endpoint.roles))
            raise Problem(
                403,
                "role_required",
                "Not allowed",
                f"this needs the {needed} role; you are {role.value}",
            )
    return caller


def csrf_ok(request: Request, caller: Caller) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    return bool(sent) and caller.csrf_token is not None and same(sent or "", caller.csrf_token)


async def _account_exists(services: Services, account_id: str) -> None:
    try:
        await get_account(services.store, account_id)
    except NotFound as exc:
        exc.field = "account_id"
        raise


def _check_idempotency_key(request: Request, endpoint: Endpoint) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if endpoint.idempotency == "none":
        return None
    if key is None:
        if endpoint.idempotency == "required":
            raise bad_request(
                "idempotency_key_required",
                "send an Idempotency-Key header (any unique string, e.g. a UUID) so a retry "
                "cannot repeat this write",
                field=IDEMPOTENCY_HEADER,
                status=428,
            )
        return None
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise bad_request(
            "invalid_field",
            "an Idempotency-Key is 1-255 printable ASCII characters",
            field=IDEMPOTENCY_HEADER,
            status=422,
        )
    return key


def handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The request handler of one operation: every check, then the endpoint's own handler."""
    # Fail closed: a staff route on an account's path must say which roles may call it.
    if (
        Kind.STAFF in endpoint.allow
        and Kind.ANONYMOUS not in endpoint.allow
        and "{account_id}" in endpoint.path
        and not endpoint.roles
    ):
        raise ValueError(f"{endpoint.method} {endpoint.path} lets staff in without roles")

    async def app(request: Request) -> Response:
        services: Services = request.app.state.services
        params: dict[str, str] = dict(request.path_params)
        try:
            caller = await _identify(request, services)
            # Who may call comes first: a caller refused here learns nothing about the body
            # and costs no parsing.
            caller = await authorize(endpoint, request, services, caller, params)
            key = _check_idempotency_key(request, endpoint)
            body, raw = await parse_body(request, endpoint.body, services.settings.max_body_bytes)
            query = parse_query(request, endpoint.query)
            call = Call(request, services, caller, params, body, query, key)
            # A guest has no scope of its own: its key would be every guest's, so a guest's
            # call is never replayed to another (nor stored).
            if key is None or caller.kind is Kind.ANONYMOUS:
                return await _run(endpoint, call)
            return await services.idempotency.run(
                scope=caller.scope,
                route=f"{endpoint.method} {endpoint.path}",
                key=key,
                fingerprint=f"{request.url.path}\n{request.url.query}\n".encode() + raw,
                run=lambda: _run(endpoint, call),
            )
        except DomainError as exc:
            return problem_response(_domain_problem(exc, params), request.url.path)
        except Problem as exc:
            return problem_response(exc, request.url.path)
        except DuplicateKeyError as exc:
            # A race the domain's own checks did not see (e.g. two first sign-ups with one
            # handle at once): the loser changed nothing and may retry.
            fields = ", ".join(exc.fields)
            problem = bad_request("conflict", f"{fields} already exists", status=409)
            problem.field = exc.fields[-1] if exc.fields else None
            return problem_response(problem, request.url.path)
        except InvalidCursorError as exc:
            return problem_response(
                bad_request(
                    "invalid_cursor", f"{exc}; start again without a cursor", field="cursor"
                ),
                request.url.path,
            )

    return app


async def _identify(request: Request, services: Services) -> Caller:
    try:
        return await identify(request, services)
    except DomainError as exc:
        # Every credential identify can refuse came in the Authorization header (a stale
        # session cookie is no credential: it leaves the caller anonymous).
        problem = Problem.from_domain(exc)
        problem.field = problem.field or "Authorization"
        raise problem from None


def _domain_problem(exc: DomainError, params: Mapping[str, str]) -> Problem:
    """The problem for a domain error; a 404 without a field names the path parameter that
    held the missing id (the domain knows the id, the client sent it as e.g. ``fan_id``)."""
    problem = Problem.from_domain(exc)
    if isinstance(exc, TooManyAttempts):
        problem.headers["Retry-After"] = str(exc.retry_after)  # RFC 6585 §4
    if problem.field is None and isinstance(exc, NotFound):
        named = [name for name, value in params.items() if value == exc.id]
        if len(named) == 1:
            problem.field = named[0]
    return problem


async def _run(endpoint: Endpoint, call: Call) -> Response:
    result = await endpoint.handler(call)
    if isinstance(result, Response):
        return result
    if isinstance(result, Reply):
        response = json_response(result.model, result.status or endpoint.status, result.headers)
        for name, value, options in result.cookies:
            response.set_cookie(name, value, **options)
        for name in result.delete_cookies:
            response.delete_cookie(name, path="/")
        return response
    return json_response(result, endpoint.status)


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """One Starlette route per path, dispatching on the method, so a wrong method answers 405
    with an ``Allow`` header that lists every method of the path (RFC 9110 §15.5.6), not
    only those of the first route that matched the path."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for e in endpoints:
        methods = by_path.setdefault(e.path, {})
        if e.method in methods:
            raise ValueError(f"{e.method} {e.path} is in the endpoint table twice")
        methods[e.method] = e
    return [_route(path, methods) for path, methods in by_path.items()]


def _route(path: str, endpoints: dict[str, Endpoint]) -> Route:
    handlers = {method: handler(e) for method, e in endpoints.items()}
    if "GET" in handlers:
        handlers["HEAD"] = handlers["GET"]

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    name = "|".join(e.operation_id for e in endpoints.values())
    return Route(path, dispatch, methods=list(endpoints), name=name)

"""Schema-driven fuzzing (DESIGN §4): schemathesis generates requests for every operation of
the OpenAPI document — valid ones and deliberately invalid ones — and sends them to the
in-process app with real credentials and a mix of real and random ids, so the requests reach
the handlers rather than stopping at 401 and 404. No answer may be a 500, and every answer
must be one the document describes (status, content type, schema).

Bounded and reproducible: a fixed number of examples per operation, derandomized.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.python import asgi
from starlette.applications import Starlette

from tests.conftest import make_settings
from webapp.app import create_app, openapi_document

DOCUMENT = openapi_document()
# The tus upload routes take raw bytes and tus headers; tests/webapp/test_uploads*.py drive
# them with a real tus client and pin every error, so this run covers the JSON API.
UPLOADS = r"^/api/v1/uploads"
# The live video routes take SDP offers and start real media; tests/webapp/test_api_live_doc.py
# drives them with real WebRTC peers and pins every answer against the document.
LIVE = r"^/(whip|whep|hls)/"
CHECKS = {
    # Every other built-in check runs: no 5xx, documented status, content type, headers and
    # schema, invalid data rejected, missing required headers refused, 405 with Allow.
    #
    # The API enforces rules JSON Schema cannot state (a ladder holds rank 0, ranks are
    # unique, a handle is not reserved, an origin is scheme://host, a cursor is one this
    # server issued, an Idempotency-Key keeps its body, 5.0 is not an integer here) and
    # refuses them with a named 4xx, which test_bad_input pins; so schema-valid data may be
    # refused.
    "positive_data_acceptance": {"enabled": False},
    # Needs credentials that schemathesis itself owns, and ours only exist once the app has
    # run; test_bad_input covers missing, forged, expired and revoked credentials per route.
    "ignored_auth": {"enabled": False},
    # A write without its Idempotency-Key is refused with 428 Precondition Required (RFC 6585).
    "missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]},
}
# Two runs over the same document: random generation, where each example also draws its
# credential and ids; and schemathesis' deterministic coverage of boundaries and invalid
# values (schema examples included), sent with the operation's own credential and real ids.
# schemathesis refuses extra `given` draws in the deterministic phases, hence two schemas.
fuzzing = (
    schemathesis.openapi.from_dict(
        DOCUMENT,
        config=schemathesis.Config.from_dict(
            {
                "checks": CHECKS,
                "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
            }
        ),
    )
    .exclude(path_regex=UPLOADS)
    .exclude(path_regex=LIVE)
)
covering = (
    schemathesis.openapi.from_dict(
        DOCUMENT,
        config=schemathesis.Config.from_dict(
            {"checks": CHECKS, "phases": {"fuzzing": {"enabled": False}}}
        ),
    )
    .exclude(path_regex=UPLOADS)
    .exclude(path_regex=LIVE)
)
# Brand A's login is the document's example, so the examples phase logs in for real. Brand
# B's owner opens the sessions that logout cases end: an email no generated request uses, so
# failed logins never lock it.
EMAIL, PASSWORD = "owner@brand.example", "correct horse battery"
B_EMAIL = "owner@fuzz-b.example"
# Success here needs a secret no generator can guess: the token an invitation email carries.
NEEDS_A_SECRET = {"POST /api/v1/invitations/accept"}
# Success here needs a body id no generator knows (a real parent comment, or none at all on a
# published content): tests/webapp/test_api_comments.py drives its successes.
NEEDS_A_SECRET |= {"POST /api/v1/contents/{content_id}/comments"}
# Plays are of videos, which take a transcode the seed does not run, and a progress report
# names a play id no generator knows: tests/webapp/test_api_discover.py drives their successes.
NEEDS_A_SECRET |= {
    "POST /api/v1/contents/{content_id}/plays",
    "PATCH /api/v1/contents/{content_id}/plays/{play_id}",
}
# Success here needs the id of a click someone followed (GET /go/…), which no generator knows:
# tests/webapp/test_api_clicks.py drives its successes.
NEEDS_A_SECRET |= {"POST /api/v1/conversions"}
# The seed has no comments (their creation is above), so no comment id to approve or remove:
# tests/webapp/test_api_moderation.py drives their successes.
NEEDS_A_SECRET |= {
    "POST /api/v1/comments/{comment_id}/approve",
    "DELETE /api/v1/comments/{comment_id}",
}
# A send needs a prop of the room's account that the fuzzer's own PUT of the catalog has not
# retired meanwhile, and a funded wallet: tests/webapp/test_api_props.py drives its successes.
NEEDS_A_SECRET |= {"POST /api/v1/rooms/{room_id}/props/{prop_id}/sends"}
# A drop needs the account's budget, which the fuzzer's other operations may have spent, and
# a grab a packet with a share left: tests/webapp/test_api_red_packets.py drives them.
NEEDS_A_SECRET |= {
    "POST /api/v1/rooms/{room_id}/red-packets",
    "POST /api/v1/red-packets/{red_packet_id}/grabs",
    "GET /api/v1/red-packets/{red_packet_id}",
}
# A drop needs a live room of the key's account, and a claim an edition left of a drop no
# generator knows the id of: tests/webapp/test_api_drops.py drives them.
NEEDS_A_SECRET |= {
    "POST /api/v1/rooms/{room_id}/drops",
    "POST /api/v1/drops/{drop_id}/claims",
    "GET /api/v1/drops/{drop_id}",
}
SECURITY_KIND = {"apiKey": "key", "fanToken": "fan", "staffSession": "staff"}


@dataclass(frozen=True)
class Credential:
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Target:
    """The app under fuzzing and the real credentials and ids it knows."""

    app: Starlette
    credentials: dict[str, Credential]
    ids: dict[str, list[str]]
    # Ids kept for one operation (by label) that the others would use up or move on first:
    # drafts for publish, contents in review for approve and reject, published ones for
    # archive.
    aimed: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    answers: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def pool(self, case: schemathesis.Case, name: str) -> list[str]:
        return self.aimed.get(case.operation.label, {}).get(name) or self.ids[name]

    def login(self) -> Credential:
        """A fresh staff session, for the cases that end the one they use."""
        with asgi.get_client(self.app) as http:
            r = http.post("/api/v1/session", json={"email": B_EMAIL, "password": PASSWORD})
            assert r.status_code == 200, r.text
            return Credential(
                {"X-CSRF-Token": r.json()["csrf_token"]}, {"la_session": r.cookies["la_session"]}
            )


def _seed(http: asgi.ASGIClient) -> Target:
    """Two brands; fans, keys, a ladder, a credit, an invitation, a follow and rooms to aim
    at."""

    def ok(r: Any, status: int = 200) -> Any:
        assert r.status_code == status, r.text
        http.cookies.clear()  # credentials go per request, as each case sends its own
        return r.json() if r.content else None

    sessions, brands = [], []
    for handle, email in (("fuzz-a", EMAIL), ("fuzz-b", B_EMAIL)):
        body = {
            "email": email,
            "password": PASSWORD,
            "account": {"name": handle, "handle": handle},
        }
        r = http.post("/api/v1/signup", json=body)
        sessions.append(r.cookies["la_session"])
        brands.append(ok(r, 201))
    a, b = brands
    url = f"/api/v1/accounts/{a['account']['id']}"
    key = {"Authorization": f"Bearer {a['api_key']}"}
    session = {"la_session": sessions[0]}
    owner = Credential({"X-CSRF-Token": a["csrf_token"]}, session)

    def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return ok(http.post(url + path, json=body, headers={**key, **(headers or {})}), 201)

    def console(path: str, body: dict[str, Any]) -> Any:
        """The owner's console routes take the session (cookie and CSRF token), not a key."""
        r = http.post(url + path, json=body, headers=owner.headers, cookies=owner.cookies)
        return ok(r, 201)

    me = post("/fan-tokens", {"external_id": "me", "name": "Me"})
    target = post("/fan-tokens", {"external_id": "target", "name": "Target"})
    spare = post("/fan-tokens", {"external_id": "target", "name": "Target"})
    ladder = {"tiers": [{"rank": 0, "name": "fan"}, {"rank": 1, "name": "gold"}]}
    ok(http.put(url + "/tiers", json=ladder, headers=key))
    credit = {"points": 5, "reason": "seed"}
    post(f"/wallets/{target['fan_id']}/credits", credit, {"Idempotency-Key": "seed"})
    spare_key = console("/api-keys", {"name": "spare"})
    invitation = console("/invitations", {"email": "ed@fuzz.example", "role": "editor"})
    fan = {"Authorization": f"Bearer {me['token']}"}
    ok(http.post(url + "/follow", headers=fan))
    # Enough drafts that deleting and publishing some still leave others for each operation.
    articles = [
        post(
            "/contents",
            {"kind": "article", "title": f"t{i}", "blocks": [{"type": "paragraph", "text": "x"}]},
        )["id"]
        for i in range(80)
    ]
    for content_id in articles[::2]:  # half published, so fans can like them
        ok(http.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=key))
    # Coupons with room for every claim the fuzzer's one fan makes.
    window = {"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}
    coupon = {"title": "seed", "stock": 10_000, "per_fan_limit": 100, **window}
    coupons = [post("/coupons", coupon)["id"] for _ in range(5)]

    def aimed(title: str, *, publish: bool = True) -> dict[str, list[str]]:
        body = {"kind": "article", "title": title, "blocks": [{"type": "paragraph", "text": "x"}]}
        made = [post("/contents", body)["id"] for _ in range(20)]
        for content_id in made if publish else ():
            ok(http.post(f"/api/v1/contents/{content_id}/publish", json={}, headers=key))
        return {"content_id": made}

    ok(http.post(url + "/sensitive-words", json={"words": ["held-word"]}, headers=key))

    def rooms(count: int) -> list[str]:
        return [post("/rooms", {"title": f"room {i}"})["id"] for i in range(count)]

    # Live rooms for the channel ops' HTTP twins (a scheduled room answers room_not_live).
    live = rooms(3)
    for room_id in live:
        ok(http.post(f"/api/v1/rooms/{room_id}/start", headers=key))
    # A room with its announcement pinned, for the unpin (its pin alone, in its room alone).
    [pinned_room] = rooms(1)
    pin = {"kind": "announcement", "text": "seed"}
    pinned = ok(http.post(f"/api/v1/rooms/{pinned_room}/pins", json=pin, headers=key), 201)
    # A room with a service card up, for its clicks (in a room no other operation pins in).
    [card_room] = rooms(1)
    shop = {"app_id": "wx_shop", "page": "pages/goods", "title": "seed"}
    card = {"kind": "service", "service": shop}
    carded = ok(http.post(f"/api/v1/rooms/{card_room}/pins", json=card, headers=key), 201)
    # A poll open for the whole run, for reads and votes.
    ask = {"question": "seed?", "options": ["a", "b", "c"], "closes_in_s": 86_400}
    poll = ok(http.post(f"/api/v1/accounts/{a['account']['id']}/polls", json=ask, headers=key), 201)

    return Target(
        app=http.app,
        credentials={
            "none": Credential(),
            "key": Credential(key),
            "other_key": Credential({"Authorization": f"Bearer {b['api_key']}"}),
            "fan": Credential(fan),
            "staff": owner,
            "staff_no_csrf": Credential(cookies=session),
            "forged_token": Credential({"Authorization": f"Bearer {me['token'][:-2]}xx"}),
        },
        ids={
            "account_id": [a["account"]["id"], b["account"]["id"]],
            # Not `me`, whose token the fuzzer speaks with: revoke-tokens would end it.
            "fan_id": [target["fan_id"]],
            "token_id": [spare["id"]],
            "key_id": [spare_key["id"]],
            "invitation_id": [invitation["id"]],
            "content_id": articles,
            "coupon_id": coupons,
            "room_id": rooms(10),
            "pin_id": [pinned["id"]],
            "poll_id": [poll["id"]],
        },
        aimed={
            "POST /api/v1/contents/{content_id}/publish": aimed("draft", publish=False),
            "POST /api/v1/contents/{content_id}/approve": aimed("a held-word title"),
            "POST /api/v1/contents/{content_id}/reject": aimed("a held-word title"),
            "POST /api/v1/contents/{content_id}/archive": aimed("out"),
            # Drafts of its own: the shared pool is deleted and archived by other operations.
            "PATCH /api/v1/contents/{content_id}": aimed("editable", publish=False),
            # Rooms of their own, so that ending rooms leaves others to start and rotate,
            # and going live leaves scheduled ones to reschedule.
            "POST /api/v1/rooms/{room_id}/end": {"room_id": rooms(5)},
            "PATCH /api/v1/rooms/{room_id}": {"room_id": rooms(5)},
            "POST /api/v1/rooms/{room_id}/chat-messages": {"room_id": live},
            "POST /api/v1/rooms/{room_id}/likes": {"room_id": live},
            "DELETE /api/v1/rooms/{room_id}/pins/{pin_id}": {
                "room_id": [pinned_room],
                "pin_id": [pinned["id"]],
            },
            "POST /api/v1/rooms/{room_id}/pins/{pin_id}/clicks": {
                "room_id": [card_room],
                "pin_id": [carded["id"]],
            },
        },
    )


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz") / "data"))
    try:
        with asgi.get_client(app) as http:
            assert http.get("/api/openapi.json").json() == DOCUMENT
            seeded = _seed(http)
        yield seeded
        # The fuzzing reached the handlers: every operation fuzzed here answered a success.
        unreached = {
            op for op, seen in seeded.answers.items() if not any(200 <= s < 300 for s in seen)
        }
        assert unreached <= NEEDS_A_SECRET, _summary(seeded)
        print(_summary(seeded))
    finally:
        # schemathesis keeps an app's lifespan running for the whole process; end ours here.
        asgi.shutdown_lifespans()


def _kinds(case: schemathesis.Case) -> list[str]:
    security = case.operation.definition.raw.get("security", [])
    return [SECURITY_KIND[name] for req in security for name in req] or ["none"]


def _send(case: schemathesis.Case, target: Target, kind: str, ids: dict[str, str]) -> None:
    credential = target.credentials[kind]
    if case.operation.schema.is_security_param_negated(case):
        credential = Credential()  # the case is about a missing or broken credential
    elif kind == "staff" and case.method == "DELETE" and case.path == "/api/v1/session":
        credential = target.login()
    case.path_parameters = {**(case.path_parameters or {}), **ids}
    case.headers = {**(case.headers or {}), **credential.headers}
    case.cookies = {**(case.cookies or {}), **credential.cookies}
    # Checks that send follow-up requests (e.g. without the credential) reach the app too.
    case.operation.schema.app = case.operation.app = target.app
    response = case.call()
    target.answers[case.operation.label][response.status_code] += 1
    case.validate_response(response)


def _summary(target: Target) -> str:
    lines = [
        f"{op}: " + " ".join(f"{status}x{n}" for status, n in sorted(seen.items()))
        for op, seen in sorted(target.answers.items())
    ]
    total = sum(sum(seen.values()) for seen in target.answers.values())
    return "\n".join([f"fuzzed {len(lines)} operations with {total} requests", *lines])


@fuzzing.parametrize()
@fuzzing.given(data=st.data())
@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_random_requests(case: schemathesis.Case, data: st.DataObject, target: Target) -> None:
    # Half the time the operation's own credential, else any (wrong, missing, broken) one.
    kind = data.draw(st.sampled_from(_kinds(case)) | st.sampled_from(sorted(target.credentials)))
    ids = {
        name: data.draw(st.sampled_from(target.pool(case, name)))
        for name in case.path_parameters or {}
        if name in target.ids and data.draw(st.booleans())
    }
    _send(case, target, kind, ids)


@covering.parametrize()
@settings(derandomize=True, database=None, deadline=None)
def test_boundary_and_invalid_values(case: schemathesis.Case, target: Target) -> None:
    ids = {
        name: target.pool(case, name)[0]
        for name in case.path_parameters or {}
        if name in target.ids
    }
    _send(case, target, _kinds(case)[0], ids)

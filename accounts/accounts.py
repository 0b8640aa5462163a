"""A brand's life account: profile, embed origins, search keywords, follower count."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from accounts.errors import Conflict, Invalid, NotFound
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, Index

ACCOUNTS = "accounts"
# One document per (account, folded keyword): the store matches scalars, not array members,
# so the search box finds an account by keyword through this side collection, not a scan.
ACCOUNT_KEYWORDS = "account_keywords"
CHAT_WORDS = ("mask", "block")
INDEXES = [
    Index(ACCOUNTS, ("handle",), unique=True),
    Index(ACCOUNTS, ("name_folded",)),  # the search box's exact name match
    Index(ACCOUNT_KEYWORDS, ("keyword",)),
    Index(ACCOUNT_KEYWORDS, ("account_id",)),
]

HANDLE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,29}$")
RESERVED_HANDLES = frozenset(
    {
        "admin",
        "api",
        "console",
        "developers",
        "embed",
        "login",
        "logout",
        "me",
        "sdk",
        "signup",
        "static",
        "support",
        "www",
        "lifeaccount",
        "healthz",
        "hls",
        "whip",
        "whep",
        "oembed",
        "go",
    }
)
DEFAULT_TIERS = ({"rank": 0, "name": "普通"},)
MAX_ORIGINS = 20
ORIGIN_HOST = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
MAX_KEYWORDS = 20


@dataclass(frozen=True)
class Tier:
    rank: int
    name: str


@dataclass(frozen=True)
class Account:
    id: str
    handle: str
    name: str
    bio: str
    avatar_url: str | None
    follower_count: int
    embed_origins: tuple[str, ...]
    keywords: tuple[str, ...]
    tiers: tuple[Tier, ...]
    created_at: str
    live_room_id: str | None = None
    # Chat in its rooms that holds a sensitive word: "mask" shows it with the word starred,
    # "block" refuses it (DESIGN §5).
    chat_words: str = "mask"

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Account:
        return cls(
            id=doc["id"],
            handle=doc["handle"],
            name=doc["name"],
            bio=doc.get("bio", ""),
            avatar_url=doc.get("avatar_url"),
            follower_count=doc.get("follower_count", 0),
            embed_origins=tuple(doc.get("embed_origins", ())),
            keywords=tuple(doc.get("keywords", ())),
            tiers=tuple(Tier(t["rank"], t["name"]) for t in doc.get("tiers", DEFAULT_TIERS)),
            created_at=doc["created_at"],
            live_room_id=doc.get("live_room_id"),
            chat_words=doc.get("chat_words", "mask"),
        )


def normalize_handle(handle: str, *, field: str = "account.handle") -> str:
    value = handle.strip().lower()
    if not HANDLE.match(value):
        raise Invalid(
            "a handle is 3-30 characters: lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    if value in RESERVED_HANDLES:
        raise Invalid(f"the handle {value!r} is reserved; choose another", field=field)
    return value


def _ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def normalize_origin(origin: str, *, field: str) -> str:
    """An embed origin is ``scheme://host[:port]`` with nothing after it (RFC 6454)."""
    parts = urlsplit(origin.strip())
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise Invalid(
            f"{origin!r} is not an origin; write it as https://host or https://host:port",
            field=field,
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"{origin!r} has a bad port", field=field) from exc
    # The origin goes into headers (CSP frame-ancestors): a host name, an IPv4 or a bracketed
    # IPv6 address, nothing else — no spaces, quotes or semicolons that would add directives.
    if not ORIGIN_HOST.fullmatch(parts.hostname) and not _ipv6(parts.hostname):
        raise Invalid(f"{origin!r} names no host; write it as https://host", field=field)
    default = {"https": 443, "http": 80}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    host = f"[{parts.hostname}]" if _ipv6(parts.hostname) else parts.hostname
    return f"{parts.scheme}://{host}{suffix}"


async def create_account(store: DocumentStore, *, name: str, handle: str, now: datetime) -> Account:
    handle = normalize_handle(handle)
    doc = {
        "id": new_id("acc"),
        "handle": handle,
        "name": clean_name(name, "account.name"),
        "name_folded": fold(name),
        "bio": "",
        "avatar_url": None,
        "follower_count": 0,
        "embed_origins": [],
        "keywords": [],
        "tiers": list(DEFAULT_TIERS),
        "live_room_id": None,  # set and cleared by live.rooms
        "created_at": rfc3339(now),
        "updated_at": rfc3339(now),
    }
    if await store.collection(ACCOUNTS).find_one({"handle": handle}) is not None:
        raise Conflict(
            f"the handle {handle!r} is taken", code="handle_taken", field="account.handle"
        )
    await store.collection(ACCOUNTS).insert(doc)
    return Account.from_doc(doc)


MAX_NAME = 60
MAX_BIO = 500
MAX_KEYWORD = 20


def clean_name(name: str, field: str, *, longest: int = MAX_NAME) -> str:
    """Collapse whitespace; a name must keep a visible character and fit ``longest``.

    The HTTP schemas document the same limits; the domain holds them so that every entry
    point (API, forms, later imports) keeps to them."""
    value = " ".join(name.split())
    if not value or not any(ch.isprintable() and not ch.isspace() for ch in value):
        raise Invalid("a name cannot be blank", field=field)
    if len(value) > longest:
        raise Invalid(f"at most {longest} characters", field=field)
    return value


async def get_account(store: DocumentStore, account_id: str) -> Account:
    doc = await store.collection(ACCOUNTS).get(account_id)
    if doc is None:
        raise NotFound("account", account_id)
    return Account.from_doc(doc)


async def get_account_by_handle(store: DocumentStore, handle: str) -> Account:
    doc = await store.collection(ACCOUNTS).find_one({"handle": handle.lower()})
    if doc is None:
        raise NotFound("account", handle)
    return Account.from_doc(doc)


async def set_live_room(
    store: DocumentStore, account_id: str, room_id: str | None, *, if_room: str | None = None
) -> None:
    """Point the account's "live now" at ``room_id`` (``None``: nothing is live). With
    ``if_room``, only while it still points at that room, so a room that ends cannot clear
    the mark of another room that went live since."""
    filter: dict[str, Any] = {"id": account_id}
    if if_room is not None:
        filter["live_room_id"] = if_room
    await store.collection(ACCOUNTS).update_one(filter, {"$set": {"live_room_id": room_id}})


async def update_profile(
    store: DocumentStore,
    account_id: str,
    *,
    now: datetime,
    name: str | None = None,
    bio: str | None = None,
    avatar_url: str | None = None,
    embed_origins: list[str] | None = None,
    keywords: list[str] | None = None,
    chat_words: str | None = None,
) -> Account:
    changes: dict[str, Any] = {"updated_at": rfc3339(now)}
    if chat_words is not None:
        if chat_words not in CHAT_WORDS:
            raise Invalid("chat_words is mask or block", field="chat_words")
        changes["chat_words"] = chat_words
    if name is not None:
        changes["name"] = clean_name(name, "name")
        changes["name_folded"] = fold(changes["name"])
    if bio is not None:
        if len(bio) > MAX_BIO:
            raise Invalid(f"a bio has at most {MAX_BIO} characters", field="bio")
        changes["bio"] = bio.strip()
    if avatar_url is not None:
        parts = urlsplit(avatar_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise Invalid("avatar_url must be an http(s) URL", field="avatar_url")
        changes["avatar_url"] = avatar_url
    if embed_origins is not None:
        if len(embed_origins) > MAX_ORIGINS:
            raise Invalid(f"at most {MAX_ORIGINS} origins", field="embed_origins")
        origins = [
            normalize_origin(o, field=f"embed_origins.{i}") for i, o in enumerate(embed_origins)
        ]
        changes["embed_origins"] = list(dict.fromkeys(origins))
    if keywords is not None:
        if len(keywords) > MAX_KEYWORDS:
            raise Invalid(f"at most {MAX_KEYWORDS} keywords", field="keywords")
        cleaned = [
            clean_name(k, f"keywords.{i}", longest=MAX_KEYWORD) for i, k in enumerate(keywords)
        ]
        changes["keywords"] = list(dict.fromkeys(cleaned))
    async with store.transaction():
        doc = await store.collection(ACCOUNTS).update_one({"id": account_id}, {"$set": changes})
        if doc is None:
            raise NotFound("account", account_id)
        if keywords is not None:
            await _index_keywords(store, account_id, changes["keywords"])
    return Account.from_doc(doc)


def fold(text: str) -> str:
    """The form a search box compares: NFKC (full-width ＴＥＡ is TEA), case-folded, single
    spaces. 茶馆, ＴＥＡ and tea house all fold to what a fan would type."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


async def _index_keywords(store: DocumentStore, account_id: str, keywords: list[str]) -> None:
    terms = store.collection(ACCOUNT_KEYWORDS)
    await terms.delete_many({"account_id": account_id})
    for keyword in dict.fromkeys(fold(k) for k in keywords):
        await terms.insert({"id": new_id("akw"), "account_id": account_id, "keyword": keyword})


async def accounts_with_keyword(store: DocumentStore, query: str, *, limit: int = 20) -> list[str]:
    """Ids of the accounts that list ``query`` (compared folded) among their keywords."""
    found = await store.collection(ACCOUNT_KEYWORDS).find({"keyword": fold(query)}, limit=limit)
    return list(dict.fromkeys(d["account_id"] for d in found))

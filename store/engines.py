"""Choose engines from settings URLs (DESIGN §3: selection by settings only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from store.broker import Broker, MemoryBroker
from store.port import DocumentStore
from store.search import SearchIndex
from store.sqlite import SQLiteStore
from store.sqlite_search import SQLiteSearch


class EngineURLError(ValueError):
    """A store or broker URL this build cannot open."""


def sqlite_path(url: str, data_dir: Path) -> Path:
    parsed = urlparse(url)
    raw = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
    if url.startswith("sqlite:////"):
        return Path("/" + url[len("sqlite:////") :])
    raw = raw.lstrip("/")
    if not raw:
        raise EngineURLError("sqlite URL needs a file, e.g. sqlite:///lifeaccount.db")
    path = Path(raw)
    return path if path.is_absolute() else data_dir / path


def check_store(url: str, data_dir: Path, *, synchronous: str = "NORMAL") -> Path:
    """Validate a store URL without opening anything; returns the SQLite file it names."""
    scheme = urlparse(url).scheme
    if scheme in ("mongodb", "mongodb+srv"):
        raise EngineURLError(
            "the MongoDB engine is not part of this build yet; use sqlite:///lifeaccount.db"
        )
    if scheme != "sqlite":
        raise EngineURLError(f"unknown store URL scheme {scheme!r}: use sqlite:///FILE")
    if synchronous.upper() not in ("NORMAL", "FULL"):
        raise EngineURLError("LIFEACCOUNT_SQLITE_SYNCHRONOUS must be NORMAL or FULL")
    return sqlite_path(url, data_dir)


REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_broker(url: str) -> None:
    if url == "memory":
        return
    parts = urlparse(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise EngineURLError(
            f"unknown broker {url!r}: use memory, redis://host:port/db or unix:///path/redis.sock"
        )
    if parts.scheme == "unix" and not parts.path:
        raise EngineURLError(f"the broker {url!r} names no socket: unix:///path/redis.sock")
    if parts.scheme != "unix" and not parts.hostname:
        raise EngineURLError(f"the broker {url!r} names no host: redis://host:port/db")


def open_store(
    url: str, data_dir: Path, *, synchronous: str = "NORMAL", threaded: bool | None = None
) -> DocumentStore:
    path = check_store(url, data_dir, synchronous=synchronous)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path, synchronous=synchronous, threaded=threaded)


def open_search(store: DocumentStore) -> SearchIndex:
    """The search index on the store's engine (SQLite: FTS5 in the same database file)."""
    if isinstance(store, SQLiteStore):
        return SQLiteSearch(store)
    raise EngineURLError("no search engine for this store yet")


def open_broker(url: str) -> Broker:
    """The in-process broker, or Redis for several processes sharing their rooms."""
    check_broker(url)
    if url == "memory":
        return MemoryBroker()
    from store.redis_broker import RedisBroker  # only a Redis deployment imports the client

    return RedisBroker(url)

"""Choose engines from settings URLs (DESIGN §3: selection by settings only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from store.broker import Broker, MemoryBroker
from store.port import DocumentStore
from store.sqlite import SQLiteStore


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


def open_store(url: str, data_dir: Path, *, synchronous: str = "NORMAL") -> DocumentStore:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url, data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(path, synchronous=synchronous)
    if scheme in ("mongodb", "mongodb+srv"):
        raise EngineURLError(
            "the MongoDB engine is not part of this build yet; use sqlite:///lifeaccount.db"
        )
    raise EngineURLError(f"unknown store URL scheme {scheme!r}: use sqlite:///FILE")


def open_broker(url: str) -> Broker:
    if url == "memory":
        return MemoryBroker()
    if urlparse(url).scheme == "redis":
        raise EngineURLError("the Redis broker is not part of this build yet; use memory")
    raise EngineURLError(f"unknown broker {url!r}: use memory")

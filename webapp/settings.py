"""Settings: command-line flags first, then ``LIFEACCOUNT_*`` variables, then defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from media.webrtc import Ice


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    store: str = "sqlite:///lifeaccount.db"
    broker: str = "memory"
    base_url: str = ""  # public URL of this deployment; empty: taken from each request
    secret: str = ""  # signs fan tokens; empty: kept in <data_dir>/secret.key
    sqlite_synchronous: str = "NORMAL"
    # Connections on threads instead of the event loop: set it when `lifeaccount worker`
    # processes share the SQLite file (FULL implies it).
    sqlite_threads: bool = False
    fan_token_ttl_s: int = 3600
    # Sign-ups from one client address an hour (each costs a password hash).
    signups_per_hour: int = 30
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    cookie_secure: bool = False
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 2 * 1024**3  # the largest tus upload (Tus-Max-Size)
    # Disk left free for the database, transcodes and logs: an upload that would eat into it
    # is refused at creation (507), rather than fill the disk half-way through.
    min_free_bytes: int = 2 * 1024**3
    log_level: str = "info"
    media_concurrency: int = 1  # jobs one media worker (serve's, or `lifeaccount worker`) runs
    schedule_every_s: int = 5  # how often serve and each worker publish scheduled contents
    # A live room whose publisher has been gone this long ends (issue 5); the sweep runs on
    # the schedule above, so it ends within live_grace_s + schedule_every_s.
    live_grace_s: int = 30
    live_seats: int = 4  # WebRTC (WHEP) viewers per room; everyone else watches HLS
    # Behind a 1:1 NAT, the public IPv4 address WebRTC peers reach this host at; or a STUN
    # server (stun:host:port) to learn it. README "Ports and UDP".
    webrtc_public_ip: str = ""
    webrtc_stun_url: str = ""
    # The room channel's websocket listener (issue 6): -1 is the HTTP port + 1 (any free port
    # when that is 0). channel_url is its public base behind a proxy (wss://live.example);
    # empty: ws(s)://<the host of each request>:<channel port>.
    channel_port: int = -1
    channel_url: str = ""
    demo: bool = False  # `lifeaccount demo`: seed the demo brand at start-up (webapp/demo.py)

    def ice(self) -> Ice:
        """How WebRTC peers reach this host; SettingsError when a setting is malformed."""
        # Here, not at the top: aiortc takes a third of a second to import, and the worker
        # and the other commands read settings without ever needing it.
        from media.webrtc import Ice

        try:
            return Ice.parse(self.webrtc_public_ip, self.webrtc_stun_url)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings; a flag that is ``None`` falls through to the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw: Any = (flags or {}).get(f.name)
            if raw is None:
                raw = env.get(f"LIFEACCOUNT_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _convert(f.name, f.type, raw)
        return cls(**values)

    def with_secret(self) -> Settings:
        """Return settings whose ``secret`` is set, creating ``secret.key`` on first start.

        The file is written whole (temporary file, fsync, rename) so a crash cannot leave an
        empty key behind; a secret shorter than 32 characters is refused, never used.
        """
        secret = self.secret
        if not secret:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / "secret.key"
            if not path.exists():
                scratch = path.with_name(f".secret.key.{os.getpid()}")
                fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    # link, unlike rename, fails when the file exists: of two processes
                    # starting at once on a new data dir, the first key wins for both.
                    os.link(scratch, path)
                except FileExistsError:
                    pass
                finally:
                    os.unlink(scratch)
            secret = path.read_text().strip()
            where = f"{path} (delete it to make a new one; minted fan tokens then stop working)"
        else:
            where = "LIFEACCOUNT_SECRET"
        if len(secret) < MIN_SECRET:
            raise SettingsError(f"the secret in {where} is shorter than {MIN_SECRET} characters")
        return replace(self, secret=secret)


class SettingsError(ValueError):
    pass


MIN_SECRET = 32


def _convert(name: str, kind: Any, raw: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if kind == "Path":
            return Path(raw)
        return str(raw)
    except ValueError as exc:
        raise SettingsError(f"LIFEACCOUNT_{name.upper()} must be a whole number") from exc

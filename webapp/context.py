"""The services every route reaches, built once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from accounts.passwords import Passwords
from content.pipeline import ImagePipeline, VideoPipeline
from live.channel import Channel
from media.jobs import JobQueue
from media.tools import ToolCheck
from store.broker import Broker
from store.port import DocumentStore
from store.search import SearchIndex
from webapp.idempotency import IdempotencyKeys
from webapp.live import LiveRooms
from webapp.settings import Settings
from webapp.throttle import FailureThrottle


@dataclass
class Services:
    settings: Settings
    store: DocumentStore
    broker: Broker
    passwords: Passwords
    secret: bytes
    now: Callable[[], datetime]
    idempotency: IdempotencyKeys
    jobs: JobQueue
    pipeline: VideoPipeline
    images: ImagePipeline
    search: SearchIndex
    live: LiveRooms
    ffmpeg: ToolCheck | None = None
    # Failed logins: a few per email, more per client address (offices share one).
    email_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(10, 900))
    address_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(100, 900))
    # Sign-ups: each costs a password hash; an address gets a generous hourly allowance.
    signup_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(30, 3600))
    ffmpeg_error: str | None = None
    channel_port: int = 0  # where the room channel's gateway listens (once started)
    channel: Channel | None = None  # the room channel's rules, once the lifespan started

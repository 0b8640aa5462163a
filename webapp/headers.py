"""Security headers on every answer (pure ASGI, so streaming answers pass through untouched).

Pages may not be framed (``frame-ancestors 'none'``) except the embed pages, whose
``frame-ancestors`` come from each account's ``embed_origins`` (DESIGN §7) and which set
their own policy.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
PAGE_POLICY = "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE.items():
                    headers.setdefault(name, value)
                if not scope["path"].startswith(("/static/", "/media/")):
                    # Answers carry secrets shown once (API keys, fan tokens, invitations) and
                    # per-caller views; no shared cache or back button should keep them.
                    headers.setdefault("cache-control", "no-store")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("content-security-policy", PAGE_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)

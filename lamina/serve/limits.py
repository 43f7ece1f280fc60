"""What one request may carry, and the ASGI middleware that answers 413 beyond it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one request may carry; beyond it the answer is 413."""

    json_bytes: int = 1 << 20  # a JSON body
    upload_bytes: int = 16 << 20  # one uploaded file
    rows: int = 1000  # rows in one JSON request

    def body_bytes(self, files: int) -> int:
        """The most a multipart body with ``files`` uploads may hold: the files plus room for the text fields."""
        return self.upload_bytes * max(files, 1) + self.json_bytes


class BodyLimit:
    """ASGI middleware: refuse a request body over the limit with 413, from its Content-Length when it has one
    and by counting the bytes as they arrive when it has not, so an oversized body is never read whole."""

    def __init__(self, app: Any, limits: Limits, files: int) -> None:
        self.app, self.limits, self.files = app, limits, files

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.limits.body_bytes(self.files) if multipart else self.limits.json_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _too_large(send, limit)
        seen = 0
        started = rejected = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen, started, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer 413 now and tell the app the client has gone; whatever it answers then is dropped.
                    rejected = True
                    if not started:
                        started = True
                        await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if rejected:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not rejected:
                raise


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

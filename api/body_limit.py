"""Request bodies over the limit are refused (413) before any handler runs.

The declared Content-Length is checked first; a body sent without one (chunked) is counted as it
arrives. Either way the whole body is read here, up to the limit, before the app sees the request,
so no handler ever starts on a body that is then found too large.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body, send_json

# After refusing, read on and drop up to this much of the rest, so the client gets to read the
# 413 instead of a connection reset (closing a socket with unread data resets it); a larger body
# is cut off.
DRAIN_LIMIT_BYTES = 4 * 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json(send, 400, error_body("invalid_input", "Content-Length must be a number of bytes",
                                                      "Content-Length"), {"connection": "close"})
                return
            if int(declared) > self.max_bytes:
                # A client waiting for `100 Continue` has not sent the body: nothing to drain.
                if headers.get(b"expect", b"").lower() != b"100-continue" and int(declared) <= DRAIN_LIMIT_BYTES:
                    await _drain(receive, DRAIN_LIMIT_BYTES)
                await self._refuse(send)
                return

        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see that
                replay = message
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_LIMIT_BYTES)
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break

        replayed = False

        async def replaying_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return replay
            return await receive()

        await self.app(scope, replaying_receive, send)

    async def _refuse(self, send: Send) -> None:
        await send_json(send, 413, error_body(
            "body_too_large", f"the request body is larger than {self.max_bytes} bytes ({self.max_bytes // 1024} KiB)"),
            {"connection": "close"})


async def _drain(receive: Receive, limit: int) -> None:
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        drained += len(message.get("body", b""))

"""Limits applied to every request before any work: before authentication, before a body is
parsed, before a route runs.

- headers: count and total size (431 REQUEST_HEADERS_TOO_LARGE);
- body: a declared Content-Length over the route's limit is refused unread (413); a body that
  grows past it while streaming is cut off there (413), so an unauthenticated client can make
  the service hold no more than the limit; uploads (STOW-RS, zip) have the upload limit, every
  other route the much smaller request limit;
- a body that stalls (nothing for `body_idle_timeout_s`) is answered 408 REQUEST_TIMEOUT and
  its reader freed;
- the request rate per client address (429 RATE_LIMITED, with Retry-After).

The app is told the client went away (http.disconnect) when a body limit trips, so it stops
reading; whatever it would have answered is replaced by this middleware's problem.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digital_contrast.api.problems import problem
from digital_contrast.api.rate_limits import RateLimits
from digital_contrast.config import Settings


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    detail: str
    retry_after_s: int | None = None


def is_upload(method: str, path: str) -> bool:
    return method == "POST" and (path == "/v1/uploads" or path == "/dicomweb/studies"
                                 or path.startswith("/dicomweb/studies/"))


async def send_problem(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    """The refusal as the app's own problem document, and the connection closed after it."""
    response = problem(refusal.status, refusal.code, refusal.detail)
    response.headers["Connection"] = "close"
    if refusal.retry_after_s is not None:
        response.headers["Retry-After"] = str(refusal.retry_after_s)
    await response(scope, receive, send)


class RequestLimits:
    """ASGI middleware, inside the request ids (so refusals carry one) and outside all else."""

    def __init__(self, app: ASGIApp, settings: Settings, rates: RateLimits) -> None:
        self.app, self.settings, self.rates = app, settings, rates

    def _refuse_early(self, scope: Scope, headers: Headers) -> Refusal | None:
        raw = scope["headers"]
        if len(raw) > self.settings.max_headers or \
                sum(len(k) + len(v) for k, v in raw) > self.settings.max_header_bytes:
            return Refusal(431, "REQUEST_HEADERS_TOO_LARGE",
                           f"at most {self.settings.max_headers} headers of "
                           f"{self.settings.max_header_bytes} bytes in all")
        address = scope["client"][0] if scope.get("client") else "unknown"
        wait_s = self.rates.address_wait(address)
        if wait_s is not None:
            return Refusal(429, "RATE_LIMITED", "too many requests from this address; retry "
                           "after the time in Retry-After", wait_s)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isascii() or not declared.isdigit()):
            return Refusal(400, "REQUEST_INVALID", "Content-Length is not a number")
        if declared is not None and int(declared) > self._body_limit(scope):
            return self._too_large(scope)
        return None

    def _body_limit(self, scope: Scope) -> int:
        return self.settings.max_upload_bytes if is_upload(scope["method"], scope["path"]) \
            else self.settings.max_request_bytes

    def _too_large(self, scope: Scope) -> Refusal:
        limit = self._body_limit(scope)
        if is_upload(scope["method"], scope["path"]):
            return Refusal(413, "UPLOAD_TOO_LARGE",
                           f"the request exceeds {limit} bytes (DC_MAX_UPLOAD_BYTES)")
        return Refusal(413, "REQUEST_TOO_LARGE",
                       f"the request body exceeds {limit} bytes (DC_MAX_REQUEST_BYTES)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refuse_early(scope, Headers(scope=scope))
        if refusal is not None:
            await send_problem(scope, receive, send, refusal)
            return
        limit, idle_s = self._body_limit(scope), self.settings.body_idle_timeout_s
        received, body_done = 0, False
        tripped: Refusal | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, tripped
            if tripped is not None:
                return {"type": "http.disconnect"}
            if body_done:  # waiting for a disconnect (streaming answers): no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), idle_s)
            except TimeoutError:
                tripped = Refusal(408, "REQUEST_TIMEOUT",
                                  f"the request body sent nothing for {idle_s:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    tripped = self._too_large(scope)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped is not None:
                if not started:  # the app's answer to the "disconnect" is replaced by ours
                    started = True
                    await send_problem(scope, receive, send, tripped)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if tripped is None or started:
                raise
        if tripped is not None and not started:  # the app stopped without answering
            await send_problem(scope, receive, send, tripped)

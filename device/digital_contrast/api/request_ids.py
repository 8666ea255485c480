"""Request ids: every HTTP request gets one, in every log line it causes, in its response's
`X-Request-ID` header and in its problem+json body; one access log line per request.

A client's own `X-Request-ID` is kept when it is 8 to 64 characters of letters, digits and
`._:-` (a proxy's or a viewer's correlation id); anything else is replaced by a new id, so a
header can never carry text (or patient data) into the logs. The access line names the route
template (`/dicomweb/studies/{study}/series`), never the URL: paths carry UIDs and query
strings carry patient names (QIDO `?PatientName=`).
"""

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digital_contrast.logs import REQUEST_ID

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
access_log = logging.getLogger("digital_contrast.api.access")


def request_id_for(incoming: str | None) -> str:
    """The client's id when well formed, else a new one."""
    if incoming and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware; the outermost one the app adds (inside Starlette's error middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(Headers(scope=scope).get(HEADER))
        # Not reset afterwards: an unhandled exception is answered and logged by Starlette's
        # error middleware and uvicorn, outside this one, in the same task (each request runs
        # in a task of its own, so the id never reaches another request).
        REQUEST_ID.set(request_id)
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if HEADER not in headers:
                    headers.append(HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            access_log.info("%s %s %d", scope["method"], route, status, extra={
                "event": "http.request", "method": scope["method"], "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})

"""Dependencies of every route: the service state, a database session, the caller's key.

`authorize` is attached to every router: it looks the matched route up in the role matrix,
refuses routes missing from it (fail closed) and, unless the route is public, requires an
active key of an allowed role (401 without or with a wrong key, 403 with another role). On
GET/HEAD without a key, the dashboard's session cookie stands for its key (`web_session`).
An address that sent too many wrong keys is refused before its key is hashed (429
AUTH_LOCKED); a key over its request rate is refused too (429 RATE_LIMITED).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from digital_contrast.api import web_session
from digital_contrast.api.roles import PUBLIC, roles_for
from digital_contrast.errors import DigitalContrastError
from digital_contrast.service import ServiceState
from digital_contrast.store import Role
from digital_contrast.store.api_keys import authenticate
from digital_contrast.store.audit import append_audit
from digital_contrast.store.auth_failures import LockoutPolicy, locked_for, record_failure
from digital_contrast.store.columns import utcnow

API_KEY_HEADER = "X-API-Key"
_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                           description="An API key (`digital-contrast keys create`).")


class AuthError(DigitalContrastError):
    """AUTH_MISSING / AUTH_INVALID (401), AUTH_FORBIDDEN (403), AUTH_LOCKED / RATE_LIMITED
    (429, with the seconds to wait)."""

    def __init__(self, code: str, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    site: str
    role: Role

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def service(request: Request) -> ServiceState:
    return request.app.state.service


def session(state: Annotated[ServiceState, Depends(service)]) -> Iterator[Session]:
    with state.sessions() as db:
        yield db


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorize(request: Request, state: Annotated[ServiceState, Depends(service)],
              header_key: Annotated[str | None, Depends(_key_header)] = None
              ) -> Principal | None:
    route = request.scope.get("route")
    allowed = roles_for(request.method, getattr(route, "path", ""))
    if allowed is None:
        raise AuthError("AUTH_FORBIDDEN", "this route is not open to any role")
    if allowed == PUBLIC:
        return None
    plaintext = header_key or _bearer(request)
    cookie = request.cookies.get(web_session.COOKIE)
    if not plaintext and not (cookie and request.method in web_session.COOKIE_METHODS):
        raise AuthError("AUTH_MISSING", f"send an API key in the {API_KEY_HEADER} header "
                                        "or as a Bearer token (a dashboard session cookie "
                                        "is accepted for GET requests only)")
    address = f"address:{request.client.host if request.client else 'unknown'}"
    with state.sessions() as db:
        if plaintext:
            if (wait := locked_for(db, address, utcnow())) is not None:
                raise AuthError("AUTH_LOCKED", "too many wrong API keys from this address; "
                                "retry after the time in Retry-After", math.ceil(wait))
            key = authenticate(db, plaintext)
            db.commit()  # last-used bookkeeping
            if key is None:
                _failed(db, state, address)
        else:  # the dashboard's session: reads only (no CSRF), the key row re-read
            key = web_session.session_key(
                db, web_session.installation_secret(state.settings.data_dir), cookie or "")
        principal = Principal(key.id, key.name, key.site, Role(key.role)) if key else None
    if principal is None:
        raise AuthError("AUTH_INVALID", "the API key is unknown, wrong, revoked or expired"
                        if plaintext else
                        "the session has expired or its key was revoked; log in again")
    if (wait_s := request.app.state.rate_limits.key_wait(principal.key_id)) is not None:
        raise AuthError("RATE_LIMITED", "too many requests with this key; retry after the "
                        "time in Retry-After", wait_s)
    if principal.role not in allowed:
        raise AuthError("AUTH_FORBIDDEN", f"role {principal.role.value} may not do this")
    request.state.principal = principal
    return principal


def _failed(db: Session, state: ServiceState, address: str) -> None:
    """Count a wrong key against its address; a lockout is a security event, audited."""
    settings = state.settings
    policy = LockoutPolicy(settings.auth_lockout_failures,
                           timedelta(seconds=settings.auth_lockout_window_s),
                           timedelta(seconds=settings.auth_lockout_s))
    if record_failure(db, address, utcnow(), policy):
        append_audit(db, settings.site, address, "auth.lockout", "address", address,
                     "refused", {"failures": policy.failures,
                                 "lockout_s": settings.auth_lockout_s})
        db.commit()


def caller(request: Request) -> Principal:
    """The authenticated caller of a non-public route (set by `authorize`)."""
    return request.state.principal


Service = Annotated[ServiceState, Depends(service)]
DbSession = Annotated[Session, Depends(session)]
Caller = Annotated[Principal, Depends(caller)]

"""Dependencies of every route: the service state, a database session, the caller's key.

`authorize` is attached to every router: it looks the matched route up in the role matrix,
refuses routes missing from it (fail closed) and, unless the route is public, requires an
active key of an allowed role (401 without or with a wrong key, 403 with another role). On
GET/HEAD without a key, the dashboard's session cookie stands for its key (`web_session`).
"""

from collections.abc import Iterator
from dataclasses import dataclass
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

API_KEY_HEADER = "X-API-Key"
_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                           description="An API key (`digital-contrast keys create`).")


class AuthError(DigitalContrastError):
    """AUTH_MISSING / AUTH_INVALID (401), AUTH_FORBIDDEN (403)."""


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
    with state.sessions() as db:
        if plaintext:
            key = authenticate(db, plaintext)
            db.commit()  # last-used bookkeeping
        else:  # the dashboard's session: reads only (no CSRF), the key row re-read
            key = web_session.session_key(
                db, web_session.installation_secret(state.settings.data_dir), cookie or "")
        principal = Principal(key.id, key.name, key.site, Role(key.role)) if key else None
    if principal is None:
        raise AuthError("AUTH_INVALID", "the API key is unknown, wrong or revoked" if plaintext
                        else "the session has expired or its key was revoked; log in again")
    if principal.role not in allowed:
        raise AuthError("AUTH_FORBIDDEN", f"role {principal.role.value} may not do this")
    request.state.principal = principal
    return principal


def caller(request: Request) -> Principal:
    """The authenticated caller of a non-public route (set by `authorize`)."""
    return request.state.principal


Service = Annotated[ServiceState, Depends(service)]
DbSession = Annotated[Session, Depends(session)]
Caller = Annotated[Principal, Depends(caller)]

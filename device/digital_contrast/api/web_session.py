"""The dashboard's session cookie: a key is typed once on the login page, the browser then
carries a signed, expiring reference to that key instead of the key itself.

Cookie value: `<key id>.<expiry, unix seconds>.<HMAC-SHA256>` under a per-installation secret
(`<data_dir>/session_secret`, 32 random bytes, mode 0600, created at first use). The MAC also
covers the key's public prefix, so a cookie never outlives its key row: a deleted key whose id
is reused by a new key does not match. Every request re-reads the row (revoked: refused).
The cookie authenticates GET/HEAD only (see `deps.authorize`): with SameSite=Strict that keeps
it away from every state change, so no CSRF token is needed.
"""

import base64
import hmac
import os
import re
import secrets
import threading
from datetime import datetime
from pathlib import Path

from fastapi import Request, Response
from sqlalchemy.orm import Session

from digital_contrast.errors import DigitalContrastError
from digital_contrast.store.columns import utcnow
from digital_contrast.store.tables import ApiKey

COOKIE = "dc_session"
MAX_AGE_S = 8 * 3600  # a working day; the key is needed again after that
COOKIE_METHODS = frozenset({"GET", "HEAD"})  # never a state change (CSRF)
SECRET_FILE = "session_secret"
SECRET_BYTES = 32
_VALUE = re.compile(r"^([0-9]{1,18})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")
_secrets: dict[Path, bytes] = {}
_lock = threading.Lock()


def installation_secret(data_dir: Path) -> bytes:
    """The signing secret of this installation, created once (readable by the owner only)."""
    path = (data_dir / SECRET_FILE).resolve()
    with _lock:
        if path not in _secrets:
            _secrets[path] = _read_or_create(path)
        return _secrets[path]


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written under a private name, then linked: another process never reads half a
        # secret, and of two racing processes the first link wins and both read it back.
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_BYTES))
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:  # whoever can read it can forge any session
        raise DigitalContrastError("CONFIG_INVALID", f"{path.name} in the data folder is "
                                   "readable by others: chmod 600 it, or delete it to renew it")
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise DigitalContrastError("CONFIG_INVALID", f"{path.name} in the data folder is "
                                   f"shorter than {SECRET_BYTES} bytes; delete it to renew it")
    return secret


def _mac(secret: bytes, key_id: int, prefix: str, expires: int) -> str:
    digest = hmac.digest(secret, f"{key_id}.{prefix}.{expires}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret: bytes, key: ApiKey, now: datetime | None = None) -> str:
    expires = int((now or utcnow()).timestamp()) + MAX_AGE_S
    return f"{key.id}.{expires}.{_mac(secret, key.id, key.prefix, expires)}"


def session_key(db: Session, secret: bytes, value: str, now: datetime | None = None
                ) -> ApiKey | None:
    """The active key a cookie stands for, or None (malformed, forged, expired, revoked)."""
    match = _VALUE.match(value or "")
    if match is None:
        return None
    key_id, expires = int(match.group(1)), int(match.group(2))
    if expires <= (now or utcnow()).timestamp():
        return None
    key = db.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(match.group(3), _mac(secret, key.id, key.prefix,
                                                             expires)) else None


def set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


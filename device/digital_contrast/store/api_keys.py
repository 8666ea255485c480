"""API keys: `dc_<prefix>_<secret>`, shown once; only a salted scrypt hash is stored.

The prefix is a public lookup id (indexed); the secret has 256 bits of entropy. Comparison is
constant-time, and an unknown prefix costs the same hash as a known one; text that is not a
key at all is refused without hashing (it reveals nothing, and garbage must cost nothing).
Keys expire (`expires_at`); rotation makes a successor and lets the old key expire after a
grace period, so that its users can switch without an outage.

A key verified once is remembered in this process as an HMAC under a per-process secret, so
that later requests cost one SHA-256 instead of a 40 ms scrypt (measured: a STOW request of a
100-slice series spent about a tenth of its CPU there). The row is still read on every request:
a revoked key or a replaced hash is refused at once; the database alone still needs scrypt.
"""

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.enums import Role
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import ApiKey

SCHEME = "dc"
_PLAINTEXT = re.compile(rf"^{SCHEME}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,128}})$")
# scrypt cost: the secret is random, so this guards a leaked table, not a guessable password.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is bookkeeping: limit the writes it costs
_DUMMY_SALT = bytes(16)


class _VerifiedKeys:
    """Keys this process has verified with scrypt: prefix -> (stored hash, HMAC of the
    plaintext under a random per-process secret). Bounded; least recently used goes first."""

    def __init__(self, capacity: int = 1024) -> None:
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def _mac(self, plaintext: str) -> bytes:
        return hmac.digest(self._secret, plaintext.encode(), "sha256")

    def known(self, plaintext: str, key: ApiKey) -> bool:
        with self._lock:
            entry = self._entries.get(key.prefix)
            if entry is not None:
                self._entries.move_to_end(key.prefix)
        return entry is not None and entry[0] == key.key_hash and \
            hmac.compare_digest(entry[1], self._mac(plaintext))

    def remember(self, plaintext: str, key: ApiKey) -> None:
        with self._lock:
            self._entries[key.prefix] = (key.key_hash, self._mac(plaintext))
            self._entries.move_to_end(key.prefix)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


_verified = _VerifiedKeys()


def _derive(plaintext: str, salt: bytes, n: int = _N, r: int = _R, p: int = _P) -> bytes:
    return hashlib.scrypt(plaintext.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN,
                          maxmem=256 * 1024 * 1024)


def _hash_record(plaintext: str, salt: bytes) -> str:
    return f"scrypt${_N}${_R}${_P}${_derive(plaintext, salt).hex()}"


def _matches(plaintext: str, key: ApiKey) -> bool:
    scheme, n, r, p, digest = key.key_hash.split("$")
    if scheme != "scrypt":
        return False
    actual = _derive(plaintext, bytes.fromhex(key.salt), int(n), int(r), int(p))
    return hmac.compare_digest(actual, bytes.fromhex(digest))


DEFAULT_VALID = timedelta(days=365)
MAX_VALID = timedelta(days=3650)


def create_api_key(session: Session, site: str, name: str, role: Role | str, *,
                   valid_for: timedelta = DEFAULT_VALID, now: datetime | None = None
                   ) -> tuple[ApiKey, str]:
    """A new key valid for `valid_for`; the plaintext is returned once and cannot be
    recovered later."""
    if not timedelta(0) < valid_for <= MAX_VALID:
        raise StoreError(StoreErrorCode.API_KEY_INVALID,
                         f"a key is valid for 1 to {MAX_VALID.days} days")
    prefix = secrets.token_hex(6)
    plaintext = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    key = ApiKey(site=site, name=name, role=Role(role), prefix=prefix, salt=salt.hex(),
                 key_hash=_hash_record(plaintext, salt),
                 expires_at=(now or utcnow()) + valid_for)
    session.add(key)
    session.flush()
    return key, plaintext


def rotate_api_key(session: Session, key_id: int, *, site: str | None = None,
                   grace: timedelta = timedelta(days=7), valid_for: timedelta = DEFAULT_VALID,
                   now: datetime | None = None) -> tuple[ApiKey, ApiKey, str]:
    """(old, successor, successor's plaintext): the successor has the old key's site, name and
    role; the old key expires after `grace` (sooner if it already would)."""
    now = now or utcnow()
    old = session.get(ApiKey, key_id)
    if old is None or (site is not None and old.site != site) or old.revoked_at is not None \
            or (old.expires_at is not None and old.expires_at <= now):
        raise StoreError(StoreErrorCode.API_KEY_NOT_FOUND, f"no active API key {key_id}")
    if not timedelta(0) <= grace <= timedelta(days=90):
        raise StoreError(StoreErrorCode.API_KEY_INVALID, "the grace period is 0 to 90 days")
    new, plaintext = create_api_key(session, old.site, old.name, old.role,
                                    valid_for=valid_for, now=now)
    old.expires_at = min(old.expires_at or now + grace, now + grace)
    session.flush()
    return old, new, plaintext


def authenticate(session: Session, plaintext: str, *, now: datetime | None = None
                 ) -> ApiKey | None:
    """The active key this plaintext belongs to, or None (malformed, unknown, wrong, revoked,
    expired)."""
    match = _PLAINTEXT.match(plaintext or "")
    if match is None:
        return None
    now = now or utcnow()
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == match.group(1))).first()
    if key is None:
        _derive(plaintext, _DUMMY_SALT)  # same cost as a real check
        return None
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        _derive(plaintext, _DUMMY_SALT)  # a refused key costs what a live one costs
        return None
    if not _verified.known(plaintext, key):
        if not _matches(plaintext, key):
            return None
        _verified.remember(plaintext, key)
    _touch(session, key, now)
    return key


def _touch(session: Session, key: ApiKey, now: datetime) -> None:
    if key.last_used_at is not None and now - key.last_used_at < _TOUCH_EVERY:
        return
    try:
        with session.begin_nested():
            key.last_used_at = now
    except OperationalError:
        # SQLite busy: a valid key is never refused over bookkeeping.
        pass


def revoke(session: Session, key_id: int, *, site: str | None = None,
           now: datetime | None = None) -> ApiKey:
    """Revoke a key for good (idempotent: a revoked key keeps its first revocation time)."""
    key = session.get(ApiKey, key_id)
    if key is None or (site is not None and key.site != site):
        raise StoreError(StoreErrorCode.API_KEY_NOT_FOUND, f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = now or utcnow()
        session.flush()
    return key


def list_keys(session: Session, site: str | None = None, *,
              include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey)
    if site is not None:
        query = query.where(ApiKey.site == site)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query.order_by(ApiKey.id)))

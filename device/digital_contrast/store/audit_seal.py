"""The audit trail's seal: HMAC keys held outside the database, and the external anchor.

The SHA-256 chain (store.audit) shows that rows were changed, unless whoever changed them
recomputed the chain. The seal closes that gap: each row carries its position `seq` and
mac = HMAC-SHA256(key, "dc-audit-v1|seq|hash") under a key that lives in the keys folder,
never in the database, so editing, recomputing or appending rows needs the key. Deleting the
newest rows needs no key; the anchor catches that: after every commit that appended events,
the head (seq, hash) is appended, keyed too, to a file outside the data folder (0600, opened
O_APPEND). `verify_audit_chain` requires the chain to reach the highest anchored head.

Rows written before migration 0005 carry no seq or mac; that migration verified them
and appended one `audit.sealed` event whose keyed hash covers the whole earlier chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from digital_contrast.store.columns import utcnow

log = logging.getLogger(__name__)

ANCHOR_MODE = 0o600
SEAL_INFO = "audit_seal"  # the key of the AuditSeal in a session's info (store.session_factory)


def key_id(key: bytes) -> str:
    """A key's public name: 16 hex digits of a hash of it (rows name the key they were sealed
    with, so a rotated-out key still verifies its rows)."""
    return hashlib.sha256(b"dc-audit-key-id|" + key).hexdigest()[:16]


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    key_id: str
    mac: str


@dataclass(frozen=True)
class AnchorReading:
    highest: Anchor | None  # the anchored head with the highest seq
    invalid_line: int | None  # 1-based number of the first line that is not a keyed anchor


@dataclass(frozen=True)
class AuditSeal:
    """The current key (new rows), every key rows may name (current and retired), and the
    anchor file."""

    current: bytes
    retired: tuple[bytes, ...] = ()
    anchor_path: Path | None = None
    _keys: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = {key_id(k): k for k in (*self.retired, self.current)}
        object.__setattr__(self, "_keys", keys)

    @property
    def key_id(self) -> str:
        return key_id(self.current)

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def row_mac(self, seq: int, row_hash: str, kid: str | None = None) -> str:
        return self._mac(kid or self.key_id, f"dc-audit-v1|{seq}|{row_hash}")

    def anchor_mac(self, seq: int, row_hash: str, kid: str | None = None) -> str:
        return self._mac(kid or self.key_id, f"dc-audit-anchor-v1|{seq}|{row_hash}")

    def _mac(self, kid: str, message: str) -> str:
        return hmac.new(self._keys[kid], message.encode("ascii"), hashlib.sha256).hexdigest()

    def write_anchor(self, seq: int, row_hash: str) -> None:
        """Append the head to the anchor file in one write (lines of concurrent writers never
        interleave under O_APPEND) and flush it to disk, as the database did the row."""
        if self.anchor_path is None:
            return
        line = json.dumps({"seq": seq, "hash": row_hash, "key": self.key_id,
                           "at": utcnow().isoformat(timespec="seconds"),
                           "mac": self.anchor_mac(seq, row_hash)}, sort_keys=True) + "\n"
        self.anchor_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.anchor_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, ANCHOR_MODE)
        try:
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_anchor(self) -> AnchorReading:
        """The highest keyed head in the anchor file. A line that does not parse or whose MAC
        does not check is reported (forged or edited), except a torn last line (a crash while
        writing it)."""
        if self.anchor_path is None or not self.anchor_path.exists():
            return AnchorReading(None, None)
        highest: Anchor | None = None
        # The last piece is b"" after a final newline, else a torn line: ignored.
        *lines, _torn = self.anchor_path.read_bytes().split(b"\n")
        for number, raw in enumerate(lines, start=1):
            anchor = self._parse(raw)
            if anchor is None:
                return AnchorReading(highest, number)
            if highest is None or anchor.seq > highest.seq:
                highest = anchor
        return AnchorReading(highest, None)

    def _parse(self, raw: bytes) -> Anchor | None:
        try:
            entry = json.loads(raw)
            anchor = Anchor(int(entry["seq"]), str(entry["hash"]), str(entry["key"]),
                            str(entry["mac"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not self.knows(anchor.key_id) or not hmac.compare_digest(
                anchor.mac, self.anchor_mac(anchor.seq, anchor.hash, anchor.key_id)):
            return None
        return anchor

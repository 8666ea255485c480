"""Pseudonyms keyed by the site's secret: the same input always maps to the same output at one
site (a study sent twice is one study), and another site's key gives unlinkable ones.

Every value is an HMAC-SHA-256 of a labelled input under the site key, so UIDs, patient
pseudonyms and date offsets cannot be computed, or reversed, without the key; the key lives in
the site's keys folder and never leaves it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

UID_ROOT = "2.25."  # UUID-derived UIDs (PS3.5 B.2): no organisational root to register
MAX_OFFSET_DAYS = 3652  # dates move back by 1 to 10 years, never forwards
KEY_BYTES = 32


@dataclass(frozen=True, repr=False)  # repr=False: the key never reaches a log line
class SiteKey:
    site: str
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < KEY_BYTES:
            raise ValueError("a site key has at least 32 bytes")

    def _mac(self, label: str, value: str) -> bytes:
        return hmac.new(self.key, f"{label}\x00{value}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A UID of 2.25 + 128 bits of the keyed hash (at most 44 characters)."""
        return UID_ROOT + str(int.from_bytes(self._mac("uid", original.strip())[:16], "big"))

    def patient(self, patient_id: str, issuer: str = "") -> str:
        """The patient's pseudonym: 20 base32 characters, the same for every study of one
        patient id (and issuer) at this site."""
        digest = self._mac("patient", f"{issuer.strip()}\x00{patient_id.strip()}")
        return base64.b32encode(digest).decode()[:20]

    def date_offset_days(self, patient_id: str, issuer: str = "") -> int:
        """Days every date of the patient moves back: 1 to 10 years, one value per patient,
        so that intervals between the patient's studies are kept."""
        digest = self._mac("date-offset", f"{issuer.strip()}\x00{patient_id.strip()}")
        return 365 + int.from_bytes(digest[:8], "big") % (MAX_OFFSET_DAYS - 365 + 1)

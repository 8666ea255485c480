"""Deterministic UUID-derived UIDs under the 2.25 root (PS3.5 B.2).

A derived series' UIDs are a function of what produced it, so a retried job re-creates the
same series instead of adding a second one to the PACS.
"""

import json
import uuid
from collections.abc import Mapping

from pydicom.uid import UID

# Name-based (RFC 4122 v5) UUIDs are made in this product's own namespace.
_NAMESPACE = uuid.UUID("9a5c2f0e-51d3-4c57-8f0b-6f1f3c1d2e7a")
# Fixed identity of this implementation in File Meta (0002,0012).
IMPLEMENTATION_CLASS_UID = UID(f"2.25.{uuid.uuid5(_NAMESPACE, 'implementation').int}")


def uid_from(*parts: str) -> UID:
    """A `2.25.<uuid>` UID determined by the given parts."""
    return UID(f"2.25.{uuid.uuid5(_NAMESPACE, chr(0x1F).join(parts)).int}")


def derived_series_uid(source_series_uid: str, bundle_sha256: str,
                       options: Mapping[str, object]) -> UID:
    canonical = json.dumps(dict(options), sort_keys=True, separators=(",", ":"), default=str)
    return uid_from("series", source_series_uid, bundle_sha256, canonical)


def derived_instance_uid(series_uid: str, index: int) -> UID:
    return uid_from("instance", series_uid, str(index))

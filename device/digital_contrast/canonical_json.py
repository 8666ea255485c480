"""Canonical JSON: one byte string per value (sorted keys, no spaces, no NaN), for what is
hashed, chained or signed (data manifests, the audit trail, signed records, registry seals)."""

import json
from typing import Any


def canonical_json(value: Any, *, ensure_ascii: bool = False) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii,
                      allow_nan=False)

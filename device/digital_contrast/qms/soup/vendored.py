"""The front-end libraries vendored under `api/static/vendor/` (not Python, so not in the
installed metadata), read from the table of their README."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import digital_contrast

VENDOR_README = Path(digital_contrast.__file__).parent / "api" / "static" / "vendor" / "README.md"


@dataclass(frozen=True)
class Vendored:
    name: str  # lower case, as on npm
    version: str
    file: Path
    sha256: str | None
    licence: str


_VENDOR_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|\s]+)\s*\|[^|]*\|\s*(\S+)")
_VENDOR_HASH = re.compile(r"SHA-256 of `([^`]+)`:\s*`([0-9a-f]{64})`")


def vendored_components(readme: Path = VENDOR_README) -> dict[str, Vendored]:
    """The table of `api/static/vendor/README.md`: library, version, file, hash, licence."""
    text = Path(readme).read_text(encoding="utf-8")
    hashes = dict(_VENDOR_HASH.findall(text))
    found = {}
    for line in text.splitlines():
        if (match := _VENDOR_ROW.match(line)) and match[3] != "version":
            name = match[2].lower()
            found[name] = Vendored(name, match[3], Path(readme).parent / match[1],
                                   hashes.get(match[1]), match[4])
    return found

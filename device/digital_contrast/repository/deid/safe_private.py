"""The site's safe-list of private elements: the only private data that leaves the site.

    - {creator: "GEMS_PARM_01", group: 0x0043, element: 0x27}

An entry names the private creator, the odd group and the element's low byte in the block
(gggg,xxEE): the block number differs between files, the creator and byte do not.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.repository.deid.deidentify import SafePrivate
from digital_contrast.repository.errors import RepositoryError


class SafePrivateEntry(FrozenSchema):
    creator: str = Field(min_length=1, max_length=64)
    group: int = Field(ge=0x0009, le=0xFFFF)
    element: int = Field(ge=0x00, le=0xFF)


def load_safe_private(path: Path) -> frozenset[SafePrivate]:
    """DEID_SAFE_LIST_INVALID for a file that is not a list of entries, or an even group."""
    try:
        entries = TypeAdapter(list[SafePrivateEntry]).validate_python(
            yaml.safe_load(path.read_text("utf-8")) or [])
    except (ValidationError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RepositoryError("DEID_SAFE_LIST_INVALID",
                              f"{path.name} is not a list of {{creator, group, element}}: "
                              f"{str(exc).splitlines()[0]}") from None
    even = [e for e in entries if e.group % 2 == 0]
    if even:
        raise RepositoryError("DEID_SAFE_LIST_INVALID",
                              f"{path.name}: group {even[0].group:04X} is not private (odd)")
    return frozenset(SafePrivate(e.creator, e.group, e.element) for e in entries)

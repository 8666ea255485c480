"""The checker's own copy of PS3.15 Table E.1-1 (edition 2024e, extracted from the standard by
the innolitics/dicom-standard project: `ps3_15_e1_1_2024e.json`, with its provenance), kept apart
from the de-identifier's rule source (dicom-anonymizer's 2026c transcription) on purpose: an
attribute either source gets wrong shows as a disagreement, not as a shared blind spot.

The expected action of a row under the repository's options: the date option first for dates
(a kept date would undo the shift of every other date), then any other chosen option's value,
then the basic profile's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("ps3_15_e1_1_2024e.json")
# The table's option columns for the options the repository applies.
DATES_COLUMN = "rtnLongModifDatesOpt"
OPTION_COLUMNS = ("rtnPatCharsOpt", "rtnDevIdOpt", "cleanDescOpt")


@dataclass(frozen=True)
class Row:
    group: str  # four hex digits, or with "X" for repeating groups ("50XX")
    element: str
    name: str
    basic: str  # "X", "Z", "D", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"
    options: dict[str, str]

    @property
    def expected(self) -> str:
        """The action the repository's profile must take (the accepted outcomes are
        `checker.ACCEPTED[expected]`)."""
        if DATES_COLUMN in self.options:
            return "C-date"
        chosen = [self.options[c] for c in OPTION_COLUMNS if c in self.options]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        return self.basic

    @property
    def private(self) -> bool:
        """The row of all private attributes ("(GGGG,EEEE) where GGGG is odd"): planted as
        private blocks, not as one tag."""
        return self.group.startswith("G")

    def concrete_tag(self) -> int:
        """The tag planted for the row: repeating groups take their first group (5000,
        6000), an element of only "X" digits its first data element (0010)."""
        group = int(self.group.replace("X", "0"), 16)
        element = 0x0010 if set(self.element) == {"X"} else int(self.element.replace("X", "0"),
                                                                      16)
        return (group << 16) | element


@dataclass(frozen=True)
class Table:
    edition: str
    source: str
    rows: tuple[Row, ...]


@cache
def load_table(path: Path = TABLE) -> Table:
    raw = json.loads(path.read_text("utf-8"))
    rows = []
    for entry in raw["rows"]:
        group, element = entry["tag"].split(")")[0].strip("(").split(",")
        options = {k: v for k, v in entry.items()
                   if k.endswith("Opt") and v}
        rows.append(Row(group.upper(), element.upper(), entry["name"], entry["basicProfile"],
                        options))
    return Table(raw["edition"], raw["source"], tuple(rows))

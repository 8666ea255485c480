"""k-anonymity of an export: every combination of quasi-identifiers it carries (age band, sex,
study year, scanner manufacturer, site) must be shared by at least k patients, or the series
of that combination are suppressed, never sent.

Patients, not series, are counted: one patient's ten series are one person, and a class of ten
series from one patient identifies that patient as surely as one series does. Dates are the
shifted ones, and only their year is a quasi-identifier. A shifted year is not a real one (each
patient's dates move back by 1 to 10 years), so it splits classes more than it identifies; it
is in the default set all the same, and a data steward who judges otherwise names the set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

QUASI_IDENTIFIERS = ("age_band", "sex", "study_year", "manufacturer", "site")


@dataclass(frozen=True)
class ExportRow:
    site: str
    series_uid: str
    patient: str
    age_band: str | None
    sex: str | None
    study_year: int | None
    manufacturer: str | None

    def quasi_identifiers(self, names: Sequence[str] = QUASI_IDENTIFIERS) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in names)


@dataclass(frozen=True)
class KAnonymityReport:
    min_k: int
    quasi_identifiers: tuple[str, ...]
    classes: int
    smallest_class_before: int  # patients
    smallest_class_after: int  # patients; 0 when nothing is left
    series_kept: int
    series_suppressed: int
    patients_suppressed: int
    kept: list[ExportRow] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"min_k": self.min_k, "quasi_identifiers": list(self.quasi_identifiers),
                "classes": self.classes, "smallest_class_before": self.smallest_class_before,
                "smallest_class_after": self.smallest_class_after,
                "series_kept": self.series_kept, "series_suppressed": self.series_suppressed,
                "patients_suppressed": self.patients_suppressed}


def k_anonymise(rows: Sequence[ExportRow], min_k: int,
                names: Sequence[str] = QUASI_IDENTIFIERS) -> KAnonymityReport:
    """Suppress every series whose class (its values of the quasi-identifiers `names`) holds
    fewer than `min_k` patients."""
    if min_k < 2:
        raise ValueError("k-anonymity needs k >= 2")
    unknown = set(names) - set(QUASI_IDENTIFIERS)
    if unknown or not names:
        raise ValueError(f"quasi-identifiers are some of {', '.join(QUASI_IDENTIFIERS)}")
    patients: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for row in rows:
        patients[row.quasi_identifiers(names)].add(f"{row.site}\x00{row.patient}")
    small = {qi for qi, members in patients.items() if len(members) < min_k}
    kept = [row for row in rows if row.quasi_identifiers(names) not in small]
    sizes = [len(members) for members in patients.values()]
    after = [len(members) for qi, members in patients.items() if qi not in small]
    return KAnonymityReport(
        min_k=min_k, quasi_identifiers=tuple(names), classes=len(patients),
        smallest_class_before=min(sizes, default=0), smallest_class_after=min(after, default=0),
        series_kept=len(kept), series_suppressed=len(rows) - len(kept),
        patients_suppressed=len({p for qi in small for p in patients[qi]}), kept=kept)

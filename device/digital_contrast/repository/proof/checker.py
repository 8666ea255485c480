"""The checker of the planted-PHI corpus, in the categories of the MIDI-B challenge: each
planted attribute's outcome against the action the checker's own table (`table`) expects, and
across the corpus the consistency of UIDs, patient pseudonyms and date offsets; then a sweep of
every value left in the output for any planted token or name that should be gone.

It reads only the corpus and the de-identifier's output, never the de-identifier's rules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from digital_contrast.repository.proof.corpus import (
    NESTED,
    PHI_CREATOR,
    SAFE_CREATOR,
    SAFE_ELEMENT,
    TOKEN,
    CorpusInstance,
    Planted,
)

_UID = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$")
# The outcomes each expected action accepts.
ACCEPTED = {
    "X": {"removed"}, "Z": {"emptied", "dummy"}, "D": {"dummy"}, "U": {"uid"},
    "K": {"retained"}, "C": {"removed", "emptied", "cleaned"}, "C-date": {"shifted"},
    "X/Z": {"removed", "emptied"}, "X/D": {"removed", "dummy"}, "Z/D": {"emptied", "dummy"},
    "X/Z/D": {"removed", "emptied", "dummy"}, "X/Z/U*": {"removed", "emptied", "uid"},
}
CATEGORIES = {  # MIDI-B's words for an expected action
    "X": "tag removed", "Z": "tag emptied", "D": "tag replaced", "U": "UID changed",
    "K": "tag retained", "C": "text cleaned", "C-date": "date shifted",
    "X/Z": "tag removed", "X/D": "tag removed", "Z/D": "tag emptied", "X/Z/D": "tag removed",
    "X/Z/U*": "UID changed",
}


@dataclass(frozen=True)
class Miss:
    category: str
    where: str  # instance, placement and attribute
    expected: str
    observed: str


@dataclass
class ProofResult:
    checked: Counter = field(default_factory=Counter)  # category -> actions checked
    misses: list[Miss] = field(default_factory=list)

    def add(self, category: str, where: str, ok: bool, expected: str, observed: str) -> None:
        self.checked[category] += 1
        if not ok:
            self.misses.append(Miss(category, where, expected, observed))

    @property
    def correct_fraction(self) -> float:
        total = sum(self.checked.values())
        return 1.0 - len(self.misses) / total if total else 0.0


def _element(ds: Dataset, planted: Planted) -> DataElement | None:
    target = ds
    if planted.placement == "nested":
        for keyword in NESTED:
            items = target.get(keyword)
            if not items:
                return None
            target = items[0]
    return target.get(Tag(planted.tag))


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1")
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _has_phi(element: DataElement, names: Iterable[str]) -> bool:
    text = _text(element.value) if element.VR != "SQ" else \
        "".join(_text(e.value) for item in element.value for e in item.iterall())
    return bool(TOKEN.search(text)) or any(n in text for n in names)


def _outcome(original: DataElement, out: DataElement | None, names: tuple[str, ...]) -> str:
    if out is None:
        return "removed"
    if out.VR == "SQ":
        if len(out.value) == 0:
            return "emptied"
        return "leaked" if _has_phi(out, names) else "cleaned"
    if out.value in (None, "", b""):
        return "emptied"
    if out.value == original.value:
        return "retained"
    if out.VR == "UI":
        return "uid" if all(_UID.match(v) and len(v) <= 64 for v in _text(out.value).split("\\")) \
            else "invalid-uid"
    if _has_phi(out, names):
        return "leaked"
    return "changed"  # dummy, cleaned or shifted: told apart by the expected action


def _judge(expected: str, outcome: str, original: DataElement, out: DataElement | None,
           dates: Callable[[str, str], str]) -> str:
    """The outcome in the terms of the expected action."""
    if outcome == "changed":
        if expected == "C-date":
            return dates(_text(original.value), _text(out.value) if out else "")
        return "cleaned" if expected == "C" else "dummy"
    if outcome == "uid" and expected == "D":
        return "dummy"  # a dummy UID
    if outcome == "retained" and expected == "C-date" and original.VR == "TM":
        return "shifted"  # whole-day offsets keep the time of day
    if outcome == "cleaned" and expected in ("K", "X/Z/U*", "D"):
        # a sequence kept with its items cleaned
        return {"K": "retained", "X/Z/U*": "uid", "D": "dummy"}[expected]
    return outcome


def check(corpus: list[CorpusInstance], outputs: list[Dataset | None]) -> ProofResult:
    """Every planted action of the corpus against the de-identified `outputs` (None: the
    instance was refused, which fails all its actions)."""
    result = ProofResult()
    offsets: dict[int, set[int]] = defaultdict(set)
    uid_map: dict[str, set[str]] = defaultdict(set)
    pseudonyms: dict[int, set[str]] = defaultdict(set)
    for instance, out in zip(corpus, outputs, strict=True):
        name = f"patient {instance.patient} study {instance.study} series {instance.series}"
        if out is None:
            result.add("instance kept", name, False, "de-identified", "refused")
            continue

        def dates(before: str, after: str, patient: int = instance.patient) -> str:
            try:
                shift = (dt.datetime.strptime(before[:8], "%Y%m%d")
                         - dt.datetime.strptime(after[:8], "%Y%m%d")).days
            except ValueError:
                return "unreadable-date"
            offsets[patient].add(shift)
            return "shifted" if shift > 0 and before[8:] == after[8:] else "not-shifted"

        for planted in instance.planted:
            original = _element(instance.dataset, planted)
            if original is None:
                continue
            after = _element(out, planted)
            expected = planted.row.expected
            if expected == "C-date" and planted.vr not in ("DA", "DT", "TM"):
                expected = "C"  # a date option's row that holds no date (an offset, bytes)
            if planted.tag == 0x00100020 and planted.placement == "top":
                continue  # the patient id: judged for consistency below
            outcome = _judge(expected, _outcome(original, after, instance.surnames), original,
                             after, dates)
            where = f"{name} {planted.placement} ({planted.row.group},{planted.row.element}) " \
                    f"{planted.row.name}"
            result.add(CATEGORIES[expected], where, outcome in ACCEPTED[expected], expected,
                       outcome)
            if expected in ("U", "X/Z/U*") and after is not None and after.VR == "UI":
                uid_map[_text(original.value)].add(_text(after.value))
        pseudonyms[instance.patient].add(str(out.get("PatientID", "")))
        _check_private(result, name, out)
        _sweep(result, name, out, instance)
    _consistency(result, offsets, uid_map, pseudonyms)
    return result


def _check_private(result: ProofResult, name: str, out: Dataset) -> None:
    phi = [e for e in out if e.tag.is_private and e.tag.group == PHI_CREATOR[1]]
    result.add("private removed", f"{name} {PHI_CREATOR[0]}", not phi, "removed",
               f"{len(phi)} elements left")
    try:
        safe = out.private_block(SAFE_CREATOR[1], SAFE_CREATOR[0])
        kept = SAFE_ELEMENT in safe and str(safe[SAFE_ELEMENT].value) == "1.5"
        unsafe_left = 0x02 in safe
    except KeyError:
        kept, unsafe_left = False, False
    result.add("private safe-list retained", f"{name} {SAFE_CREATOR[0]}", kept, "retained",
               "retained" if kept else "removed")
    result.add("private removed", f"{name} {SAFE_CREATOR[0]} (0011,xx02)", not unsafe_left,
               "removed", "left" if unsafe_left else "removed")


def _sweep(result: ProofResult, name: str, out: Dataset, instance: CorpusInstance) -> None:
    """No planted token of an attribute that should not be kept, and no name, anywhere."""
    kept = {p.tag for p in instance.planted if p.row.expected == "K"}
    leaks = []
    for element in out.iterall():
        if element.VR == "SQ" or int(element.tag) in kept:
            continue
        text = _text(element.value)
        if TOKEN.search(text) or any(n in text for n in instance.surnames):
            leaks.append(f"{element.tag}")
    result.add("no identifying value left", name, not leaks, "none",
               ", ".join(sorted(set(leaks))[:10]) or "none")


def _consistency(result: ProofResult, offsets: dict[int, set[int]],
                 uid_map: dict[str, set[str]], pseudonyms: dict[int, set[str]]) -> None:
    for patient, shifts in sorted(offsets.items()):
        result.add("date shifted consistently", f"patient {patient}", len(shifts) == 1,
                   "one offset", f"{len(shifts)} offsets")
    inverse: dict[str, set[str]] = defaultdict(set)
    for before, afters in uid_map.items():
        result.add("UID changed consistently", before, len(afters) == 1, "one UID",
                   f"{len(afters)} UIDs")
        for after in afters:
            inverse[after].add(before)
    result.add("UID changed consistently", "all", all(len(v) == 1 for v in inverse.values()),
               "distinct UIDs stay distinct", "collisions" if any(
                   len(v) > 1 for v in inverse.values()) else "none")
    for patient, ids in sorted(pseudonyms.items()):
        result.add("patient ID consistent", f"patient {patient}",
                   len(ids) == 1 and "" not in ids and not any(TOKEN.search(i) for i in ids),
                   "one pseudonym", f"{sorted(ids)}")
    distinct = [next(iter(v)) for v in pseudonyms.values() if len(v) == 1]
    result.add("patient ID consistent", "all", len(set(distinct)) == len(distinct),
               "one pseudonym per patient", f"{len(set(distinct))} for {len(distinct)}")

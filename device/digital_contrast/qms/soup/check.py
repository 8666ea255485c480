"""`check_soup`: every disagreement between the assessments of qms/soup.yaml and the installed
closure or the vendored files, at its file and line."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from digital_contrast.qms.soup.assessments import SoupFile, SoupItem
from digital_contrast.qms.soup.closure import Dist
from digital_contrast.qms.soup.vendored import VENDOR_README, Vendored, vendored_components
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path

# Known-anomaly lists change weekly; a review older than a year is no review (8.1.2).
REVIEW_MAX_AGE_DAYS = 365


def same_release(recorded: str, installed: str) -> bool:
    """Equal versions; a local label on the installed one only (torch `+cpu`) names a build of
    the same release, so `2.13.0` matches `2.13.0+cpu` but not `2.13.1`."""
    try:
        want, have = Version(recorded), Version(installed)
    except InvalidVersion:
        return recorded == installed
    return want == have or (want.local is None and Version(have.public) == want)


def check_soup(soup: SoupFile, closure: dict[str, Dist], known_items: set[str], *,
               vendored: dict[str, Vendored] | None = None,
               today: date | None = None) -> list[Problem]:
    """Every direct dependency assessed once, nothing else assessed, versions as installed."""
    doc, today = soup.doc, today or date.today()
    vendored = vendored_components() if vendored is None else vendored
    problems: list[Problem] = []
    for index, item in soup.items:
        at = ("direct", index)
        key = canonicalize_name(item.name)
        if item.ecosystem == "npm":
            problems += _check_vendored(doc, at, item, vendored.get(item.name.lower()))
        elif (dist := closure.get(key)) is None or not dist.direct:
            why = (f"a transitive dependency (pulled in by {', '.join(sorted(dist.required_by))})"
                   f"; its row is generated" if dist else "not a runtime dependency")
            problems.append(doc.problem((*at, "name"), f"SOUP entry {item.name} is {why}, not "
                                        "a direct runtime dependency in pyproject.toml"))
        elif dist.version is None:
            problems.append(doc.problem((*at, "name"), f"{item.name} is a runtime dependency "
                                        "but is not installed"))
        elif not same_release(item.version, dist.version):
            problems.append(doc.problem((*at, "version"), f"{item.name} is {item.version} in "
                                        f"the SOUP list but {dist.version} is installed"))
        problems += [doc.problem((*at, "software_items", n), f"unknown software item {si}")
                     for n, si in enumerate(item.software_items) if si not in known_items]
        age = (today - item.anomalies_reviewed).days
        if age > REVIEW_MAX_AGE_DAYS or age < 0:
            problems.append(doc.problem((*at, "anomalies_reviewed"), f"{item.name}: known "
                                        f"anomalies reviewed {item.anomalies_reviewed}, "
                                        + ("in the future" if age < 0 else f"{age} days ago (at "
                                           f"most {REVIEW_MAX_AGE_DAYS})")))
    assessed = soup.by_name()
    missing = [d for d in closure.values() if d.direct and d.name not in assessed]
    missing_vendored = [v for v in vendored.values() if canonicalize_name(v.name) not in assessed]
    problems += [doc.problem(("direct",), f"{d.name} {d.version} is a direct runtime dependency "
                             "(pyproject.toml) without a SOUP assessment") for d in missing]
    problems += [doc.problem(("direct",), f"{v.name} {v.version} is vendored "
                             f"({display_path(v.file)}) without a SOUP assessment")
                 for v in missing_vendored]
    return problems


def _check_vendored(doc: YamlDocument, at: tuple[str | int, ...], item: SoupItem,
                    vendored: Vendored | None) -> list[Problem]:
    if vendored is None:
        return [doc.problem((*at, "name"), f"{item.name} is not listed in "
                            f"{display_path(VENDOR_README)}")]
    problems = []
    if vendored.version != item.version:
        problems.append(doc.problem((*at, "version"), f"{item.name} is {item.version} in the "
                                    f"SOUP list but {vendored.version} is vendored"))
    # The README's version is only worth recording if the shipped file is the one it describes.
    if not vendored.file.is_file() or vendored.sha256 != _sha256(vendored.file):
        problems.append(doc.problem((*at, "version"), f"{display_path(vendored.file)} is "
                                    "missing or differs from the SHA-256 in its README"))
    return problems


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

"""`check_soup`: every disagreement between the assessments of qms/soup.yaml and the installed
closure, the vendored files, the measured platform and the anomaly review records, at its file
and line."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from digital_contrast.qms.soup.assessments import PlatformItem, SoupFile, SoupItem
from digital_contrast.qms.soup.closure import Dist
from digital_contrast.qms.soup.platform import Measured, measure_platform
from digital_contrast.qms.soup.reviews import (
    REVIEW_MAX_AGE_DAYS,
    REVIEWS_DIR,
    ReviewRecord,
    check_reviews,
    load_reviews,
)
from digital_contrast.qms.soup.vendored import VENDOR_README, Vendored, vendored_components
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path

__all__ = ["REVIEW_MAX_AGE_DAYS", "check_soup", "same_release"]


def same_release(recorded: str, installed: str) -> bool:
    """Equal versions; a local label on the installed one only (torch `+cpu`) names a build of
    the same release, so `2.13.0` matches `2.13.0+cpu` but not `2.13.1`."""
    try:
        want, have = Version(recorded), Version(installed)
    except InvalidVersion:
        return recorded == installed
    return want == have or (want.local is None and Version(have.public) == want)


def same_series(recorded: str, measured: str) -> bool:
    """The same release series (major.minor; the major alone where only one is recorded): a
    platform component patched in place by its distributor (Debian security updates, a CPython
    micro release) stays within its assessment, while its exact version goes into the SBOM."""
    want, have = re.findall(r"\d+", recorded), re.findall(r"\d+", measured)
    width = min(len(want), 2)
    return bool(want) and want[:width] == have[:width]


def _assessed_version(item: PlatformItem, measured: Measured | None) -> str:
    """The version the assessment and its review stand for: the recorded one while the measured
    component is within it (or only needed by the tests, which a site never runs)."""
    if measured is None or measured.version is None or item.use == ["test"] or \
            same_series(item.version, measured.version):
        return item.version
    return measured.version


def check_soup(soup: SoupFile, closure: dict[str, Dist], known_items: set[str], *,
               vendored: dict[str, Vendored] | None = None, today: date | None = None,
               platform: dict[str, Measured] | None = None,
               reviews: dict[str, ReviewRecord] | None = None,
               reviews_dir: Path = REVIEWS_DIR) -> list[Problem]:
    """Every direct dependency and platform component assessed once, nothing else assessed,
    versions as installed or measured, support not lapsed, each reviewed for its version.

    `platform` and `reviews` default to this machine's measurement and the records of
    `reviews_dir` (whose schema problems are then reported too)."""
    doc, today = soup.doc, today or date.today()
    vendored = vendored_components() if vendored is None else vendored
    platform = measure_platform() if platform is None else platform
    problems: list[Problem] = []
    if reviews is None:
        reviews, found = load_reviews(reviews_dir)
        problems += found
    in_use: list[tuple[tuple[str, int], str, str, str]] = []
    for index, item in soup.items:
        at = ("direct", index)
        key = canonicalize_name(item.name)
        version = item.version
        if item.ecosystem == "npm":
            problems += _check_vendored(doc, at, item, vendored.get(item.name.lower()))
            version = shipped.version if (shipped := vendored.get(item.name.lower())) else version
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
            version = dist.version
        in_use.append((at, item.name, version, item.anomaly_source))
    problems += _check_platform(soup, platform)
    for at, item in soup.all_items():
        problems += [doc.problem((*at, "software_items", n), f"unknown software item {si}")
                     for n, si in enumerate(item.software_items) if si not in known_items]
        if item.support.status == "supported" and item.support.until and \
                item.support.until < today:
            problems.append(doc.problem((*at, "support", "until"), f"{item.name}: support "
                                        f"recorded as supported until {item.support.until}, "
                                        "which has passed"))
    for index, item in soup.platform:
        in_use.append((("platform", index), item.name,
                       _assessed_version(item, platform.get(item.name)), item.anomaly_source))
    problems += check_reviews(doc, in_use, reviews, today, reviews_dir)
    assessed = soup.by_name()
    missing = [d for d in closure.values() if d.direct and d.name not in assessed]
    missing_vendored = [v for v in vendored.values() if canonicalize_name(v.name) not in assessed]
    problems += [doc.problem(("direct",), f"{d.name} {d.version} is a direct runtime dependency "
                             "(pyproject.toml) without a SOUP assessment") for d in missing]
    problems += [doc.problem(("direct",), f"{v.name} {v.version} is vendored "
                             f"({display_path(v.file)}) without a SOUP assessment")
                 for v in missing_vendored]
    return problems


def _check_platform(soup: SoupFile, platform: dict[str, Measured]) -> list[Problem]:
    """Each platform component assessed under `platform:`, with the measured version (only
    compared where one was measured); an entry for anything else is reported."""
    doc, problems = soup.doc, []
    assessed: dict[str, tuple[int, PlatformItem]] = {i.name: (n, i) for n, i in soup.platform}
    for name, measured in platform.items():
        if name not in assessed:
            problems.append(doc.problem(("platform",), f"platform component {name} "
                                        f"{measured.version or '(version not measured)'} "
                                        f"({measured.source}) has no SOUP assessment under "
                                        "platform:"))
            continue
        index, item = assessed[name]
        if _assessed_version(item, measured) != item.version:
            problems.append(doc.problem(("platform", index, "version"), f"platform component "
                                        f"{name} is {item.version} in the SOUP list but "
                                        f"{measured.version} was measured ({measured.source}), "
                                        "another release series"))
    problems += [doc.problem(("platform", index, "name"), f"platform entry {item.name} is not a "
                             "platform component of the device (interpreter, its OpenSSL and "
                             "SQLite, OS, Makefile TEST_DEB_PACKAGES, servers)")
                 for index, item in soup.platform if item.name not in platform]
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

"""SOUP (IEC 62304 5.3.3, 5.3.4, 7.1.2, 8.1.2): list, assessments, SBOM, vulnerability audit.

The scope is the runtime closure of `[project] dependencies`, computed from the installed
distributions' metadata (never typed). Direct dependencies, and the front-end libraries vendored
under `api/static/vendor/`, carry a full assessment in `qms/soup.yaml`; transitive ones get
generated rows (version, licence, which direct dependencies pull them in). `check_soup` reports
every disagreement between the two at its file and line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from importlib.metadata import PackageNotFoundError, distribution
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

import digital_contrast
from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.records import QMS_DIR, RecordError
from digital_contrast.qms.requirements import SoftwareItemId, Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path

PYPROJECT = REPO_ROOT / "pyproject.toml"
SOUP_FILE = QMS_DIR / "soup.yaml"
VENDOR_README = Path(digital_contrast.__file__).parent / "api" / "static" / "vendor" / "README.md"
DOCUMENT_ID, TITLE = "DC-SOUP", "SOUP list"
APPROVALS = ("Author", "Reviewer", "Approver (regulatory)")
# Known-anomaly lists change weekly; a review older than a year is no review (8.1.2).
REVIEW_MAX_AGE_DAYS = 365


# --- The runtime closure, from installed metadata ----------------------------------------------

@dataclass
class Dist:
    """One installed distribution of the closure (`version` None: required but not installed)."""

    name: str  # canonical (PEP 503)
    version: str | None
    licence: str
    required_by: set[str] = field(default_factory=set)  # the direct dependencies pulling it in
    direct: bool = False
    requires: set[str] = field(default_factory=set)  # its own dependencies within the closure


def licence_of(meta: Message) -> str:
    """SPDX `License-Expression`, else a short `License` field, else the licence classifiers."""
    if expression := (meta.get("License-Expression") or "").strip():
        return expression
    text = (meta.get("License") or "").strip()
    # Some projects paste the whole licence text (or just "LICENSE") into this field.
    if text and "\n" not in text and len(text) <= 40 and text.upper() != "LICENSE":
        return text
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    return " / ".join(classifiers) or "not declared in metadata"


def _metadata(name: str) -> Message | None:
    try:
        return distribution(name).metadata  # type: ignore[return-value]
    except PackageNotFoundError:
        return None


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    # Base requirements are evaluated with extra == ""; the requested extras add theirs.
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras})


def closure_of(roots: list[Requirement]) -> dict[str, Dist]:
    """Every distribution `roots` need in this environment, following extras and markers."""
    dists: dict[str, Dist] = {}
    metas: dict[str, Message | None] = {}
    for root in roots:
        if not _applies(root, frozenset()):
            continue
        top = canonicalize_name(root.name)
        seen: set[tuple[str, frozenset[str]]] = set()
        stack = [root]
        while stack:
            req = stack.pop()
            name, extras = canonicalize_name(req.name), frozenset(req.extras)
            if (name, extras) in seen:
                continue
            seen.add((name, extras))
            if name not in metas:
                metas[name] = _metadata(name)
            meta = metas[name]
            dist = dists.get(name)
            if dist is None:
                dist = dists[name] = Dist(name, meta["Version"] if meta else None,
                                          licence_of(meta) if meta else "not installed")
            if name != top:
                dist.required_by.add(top)
            for text in (meta.get_all("Requires-Dist") or []) if meta else []:
                child = Requirement(text)
                if _applies(child, extras):
                    dist.requires.add(canonicalize_name(child.name))
                    stack.append(child)
    for root in roots:
        if (top := canonicalize_name(root.name)) in dists:
            dists[top].direct = True
    return dict(sorted(dists.items()))


def _project(pyproject: Path) -> dict[str, Any]:
    return tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]


def runtime_closure(pyproject: Path = PYPROJECT) -> dict[str, Dist]:
    """The SOUP scope: `[project] dependencies` (torch included) and all they pull in."""
    return closure_of([Requirement(r) for r in _project(pyproject)["dependencies"]])


def tool_closure(pyproject: Path = PYPROJECT,
                 runtime: dict[str, Dist] | None = None) -> dict[str, Dist]:
    """The `test` and `qms` extras' closure minus the runtime: tools of verification and of the
    technical file, not shipped with the device, hence not SOUP."""
    runtime = runtime_closure(pyproject) if runtime is None else runtime
    extras = _project(pyproject).get("optional-dependencies", {})
    tools = closure_of([Requirement(r) for key in ("test", "qms") for r in extras.get(key, [])])
    return {name: dist for name, dist in tools.items() if name not in runtime}


# --- Vendored front-end libraries (not Python, so not in the metadata) -------------------------

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


# --- qms/soup.yaml -------------------------------------------------------------------------------

class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Anomaly(_Record):
    id: Text  # advisory / issue id, or a one-line summary
    relevance: Text  # does the code path we use reach it?
    assessment: Text  # what follows for the device


class SoupItem(_Record):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    version: Annotated[str, StringConstraints(min_length=1)]
    ecosystem: Literal["pypi", "npm"] = "pypi"
    supplier: Text
    licence: Text
    purpose: Text
    software_items: list[SoftwareItemId] = Field(min_length=1)
    requirements: list[Text] = Field(min_length=1)  # functional and performance (5.3.3)
    hardware_and_software_needed: Text | None = None  # 5.3.4
    anomaly_source: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    anomalies_reviewed: date
    anomalies: list[Anomaly]  # 7.1.2 c)
    assessment_note: Text | None = None
    failure_control: Text  # how a failure of it is detected or contained

    @model_validator(mode="after")
    def _reviewed_somehow(self) -> SoupItem:
        if not self.anomalies and not self.assessment_note:
            raise ValueError("an empty anomalies list needs an assessment_note saying what "
                             "was reviewed")
        return self


@dataclass(frozen=True)
class SoupFile:
    doc: YamlDocument
    items: list[tuple[int, SoupItem]]  # (index in `direct:`, entry), valid entries only

    def by_name(self) -> dict[str, tuple[int, SoupItem]]:
        found: dict[str, tuple[int, SoupItem]] = {}
        for index, item in self.items:
            found.setdefault(canonicalize_name(item.name), (index, item))
        return found


def load_soup(path: Path = SOUP_FILE) -> tuple[SoupFile | None, list[Problem]]:
    """The assessments with every schema problem at its line (None when not YAML at all)."""
    doc, problems = YamlDocument.load(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("direct"), list):
        return None, [doc.problem((), "expected a top-level 'direct:' list")]
    problems += [doc.problem((key,), f"unknown top-level key {key!r}")
                 for key in doc.data if key != "direct"]
    items: list[tuple[int, SoupItem]] = []
    seen: set[str] = set()
    for index, row in enumerate(doc.data["direct"]):
        item, found = doc.validate(("direct", index), row, SoupItem)
        problems += found
        if item is None:
            continue
        if (key := canonicalize_name(item.name)) in seen:
            problems.append(doc.problem(("direct", index, "name"),
                                        f"duplicate SOUP entry {item.name}"))
        seen.add(key)
        items.append((index, item))
    return SoupFile(doc, items), problems


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


# --- The rendered list ---------------------------------------------------------------------------

def soup_rows(soup: SoupFile, closure: dict[str, Dist], *,
              vendored: dict[str, Vendored] | None = None) -> list[dict[str, Any]]:
    """Direct rows (assessment joined with installed metadata), then generated transitive rows."""
    vendored = vendored_components() if vendored is None else vendored
    rows = []
    for _, item in sorted(soup.items, key=lambda pair: canonicalize_name(pair[1].name)):
        key = canonicalize_name(item.name)
        dist = closure.get(key)
        shipped = vendored.get(item.name.lower()) if item.ecosystem == "npm" else None
        rows.append({
            **item.model_dump(mode="json"),
            "section": "direct",
            "name": item.name,
            "installed_version": shipped.version if shipped else (dist.version if dist else None),
            "metadata_licence": shipped.licence if shipped else (dist.licence if dist else ""),
            "required_by": sorted(dist.required_by) if dist else [],
        })
    rows += [{"section": "transitive", "name": d.name, "version": d.version,
              "installed_version": d.version, "licence": d.licence, "ecosystem": "pypi",
              "required_by": sorted(d.required_by)}
             for d in closure.values() if not d.direct]
    return rows


_CSV_FIELDS = ("section", "name", "version", "installed_version", "ecosystem", "licence",
               "supplier", "purpose", "software_items", "required_by", "anomaly_source",
               "anomalies_reviewed", "anomalies")


def write_soup_list(out_dir: Path, soup: SoupFile | None = None,
                    closure: dict[str, Dist] | None = None, *,
                    pyproject: Path = PYPROJECT, today: date | None = None) -> list[Path]:
    """`soup_list.md`, `soup_list.html` (self-contained), its `.pdf` and `soup_list.csv` under
    `out_dir`.

    Open findings of `check_soup` are printed in the document rather than hidden.
    """
    if soup is None:
        soup, problems = load_soup()
        if soup is None or problems:
            raise RecordError(detail="; ".join(map(str, problems)))
    closure = runtime_closure(pyproject) if closure is None else closure
    today = today or date.today()
    vendored = vendored_components()
    rows = soup_rows(soup, closure, vendored=vendored)
    tools = tool_closure(pyproject, closure)
    sha256 = hashlib.sha256(soup.doc.text.encode("utf-8")).hexdigest()
    context = {
        "document": document_header(
            DOCUMENT_ID, TITLE, approvals=APPROVALS, date=today,
            source=f"{soup.doc.name} (SHA-256 {sha256}) and the installed distributions' "
                   "metadata"),
        "source_file": soup.doc.name, "source_sha256": sha256,
        "direct": [r for r in rows if r["section"] == "direct"],
        "transitive": [r for r in rows if r["section"] == "transitive"],
        "tools": list(tools.values()),
        "findings": check_soup(soup, closure, _known_items(), vendored=vendored, today=today),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = (render(f"soup_list.{suffix}.j2", context, out_dir / f"soup_list.{suffix}",
                       compact=True) for suffix in ("md", "html"))
    paths = [md, html, write_pdf(html)]
    csv_path = out_dir / "soup_list.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "software_items": " ".join(row.get("software_items", [])),
                             "required_by": " ".join(row["required_by"]),
                             "anomalies": len(row["anomalies"]) if "anomalies" in row else ""})
        for dist in tools.values():
            writer.writerow({"section": "test-tool", "name": dist.name, "version": dist.version,
                             "installed_version": dist.version, "ecosystem": "pypi",
                             "licence": dist.licence})
    return [*paths, csv_path]


def _known_items() -> set[str]:
    doc, _ = YamlDocument.load(QMS_DIR / "software_items.yaml")
    rows = doc.data.get("software_items", []) if doc and isinstance(doc.data, dict) else []
    return {row["id"] for row in rows if isinstance(row, dict) and "id" in row}


# --- CycloneDX SBOM ------------------------------------------------------------------------------

def write_sbom(path: Path, closure: dict[str, Dist], *,
               vendored: dict[str, Vendored] | None = None) -> Path:
    """CycloneDX 1.6 JSON: the device, every closure member and vendored file, the graph."""
    # Imported here: the `qms` extra (technical-file tooling), not a runtime dependency.
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    vendored = vendored_components() if vendored is None else vendored
    licences = LicenseFactory()
    bom = Bom()
    device = Component(name="digital-contrast", version=digital_contrast.__version__,
                       type=ComponentType.APPLICATION, bom_ref="digital-contrast",
                       description=digital_contrast.PRODUCT_NAME)
    bom.metadata.component = device
    components = {}
    for dist in closure.values():
        if dist.version is None:
            continue
        purl = PackageURL("pypi", None, dist.name, dist.version)
        components[dist.name] = Component(
            name=dist.name, version=dist.version, purl=purl, bom_ref=purl.to_string(),
            licenses=[licences.make_from_string(dist.licence)])
    for item in vendored.values():
        purl = PackageURL("npm", None, item.name, item.version)
        hashes = [HashType(alg=HashAlgorithm.SHA_256, content=item.sha256)] if item.sha256 else []
        components[item.name] = Component(
            name=item.name, version=item.version, purl=purl, bom_ref=purl.to_string(),
            hashes=hashes, licenses=[licences.make_from_string(item.licence)])
    for component in components.values():
        bom.components.add(component)
    direct = [c for n, c in components.items() if n in vendored or closure[n].direct]
    bom.register_dependency(device, direct)
    for name, dist in closure.items():
        if name in components:
            bom.register_dependency(components[name], [components[r] for r in
                                                       sorted(dist.requires) if r in components])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2) + "\n", encoding="utf-8")
    return path


# --- Vulnerability audit (pip-audit) -------------------------------------------------------------

def audit_vulnerabilities(closure: dict[str, Dist], timeout_s: float = 20,
                          service: str = "pypi", *,
                          vendored: dict[str, Vendored] | None = None) -> dict[str, Any]:
    """pip-audit over the closure's exact versions; a record that says when it could not run.

    `status` is `completed` (every distribution looked up), `incomplete` (some skipped, listed
    with the reason) or `unavailable` (none looked up, or the tool failed): never a silent
    "no vulnerabilities". `timeout_s` bounds each request to the service. Vendored npm files
    are listed under `not_audited`.
    """
    try:
        tool = f"pip-audit {installed_version('pip-audit')}"
    except PackageNotFoundError:
        tool = "pip-audit (not installed)"
    record: dict[str, Any] = {"tool": tool, "service": service,
                              "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
    # A local label (torch +cpu) is a build of the public release the advisories name.
    pins = {d.name: Version(d.version).public for d in closure.values() if d.version}
    vendored = vendored_components() if vendored is None else vendored
    record["not_audited"] = ([f"{d.name}: not installed" for d in closure.values()
                              if d.version is None]
                             + [f"{v.name} {v.version}: npm, outside pip-audit's scope"
                                for v in vendored.values()])
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
        command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
                   "--disable-pip", "--format", "json", "--progress-spinner", "off",
                   "--vulnerability-service", service, "--timeout", str(max(1, round(timeout_s))),
                   "--cache-dir", str(Path(tmp) / "cache")]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=timeout_s * 10 + 30)
        except subprocess.TimeoutExpired:
            return {**record, "status": "unavailable",
                    "reason": f"pip-audit did not finish within {timeout_s * 10 + 30:.0f} s"}
    return {**record, **parse_audit(done.stdout, done.stderr, len(pins))}


def parse_audit(stdout: str, stderr: str, submitted: int) -> dict[str, Any]:
    """The status, vulnerabilities and skipped distributions of pip-audit's JSON output."""
    try:
        report = json.loads(stdout)
        dependencies = report["dependencies"]
    except (json.JSONDecodeError, KeyError, TypeError):
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return {"status": "unavailable",
                "reason": f"pip-audit failed: {lines[-1] if lines else 'no output'}"}
    skipped = [f"{d['name']}: {d['skip_reason']}" for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerabilities = [{"name": d["name"], "version": d.get("version"), "id": v.get("id"),
                        "aliases": v.get("aliases", []), "fix_versions": v.get("fix_versions", []),
                        "description": v.get("description", "")}
                       for d in audited for v in d.get("vulns", [])]
    counts = {"submitted": submitted, "audited": len(audited), "skipped": skipped}
    if not audited:
        # What a registry-only network gives: pypi.org answers 404 to every JSON lookup, and
        # pip-audit then says "No known vulnerabilities found" with exit status 0. No
        # `vulnerabilities` key here: an empty list would read as a clean result.
        first = skipped[0] if skipped else "no dependency in the report"
        return {**counts, "status": "unavailable",
                "reason": f"the vulnerability service answered for none of the {submitted} "
                          f"distributions (first: {first})"}
    return {**counts, "status": "incomplete" if skipped else "completed",
            "vulnerabilities": vulnerabilities}

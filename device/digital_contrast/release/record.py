"""The release record of a software version (IEC 62304 5.8): `releases/<VERSION>/`.

`build_release` refuses an invalid or existing version, a working tree with uncommitted changes
and any gap `qms check` finds, writing nothing. Otherwise it builds the wheel and writes the
generated documents (trace matrix, risk management report, SOUP list and SBOM, detailed design),
a test report from the junit run, the known residual anomalies, the validation records of the
models, the current `validate` run of every protocol (refused when one has none) and the release
notes, which open with the overall residual risk conclusion (also in the manifest: a build whose
residual risk is not acceptable is for research use and supports no clinical claim), into a
scratch folder, then the manifest with the SHA-256 of every
file, and renames the folder into place: a release record is complete or absent, never partial.
Notes and manifest state the vulnerability audit's status and the incomplete SOUP anomaly
reviews, and what must be attached before any submission when either is not complete.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from digital_contrast import PRODUCT_NAME, __version__
from digital_contrast.config import REPO_ROOT, get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.qms.anomalies import (
    ResidualAnomaly,
    documented_tests,
    load_anomalies,
)
from digital_contrast.qms.check import Clause, check_binding, run_checks
from digital_contrast.qms.junit_report import DEFAULT_JUNIT, JunitError, TestRun, read_junit
from digital_contrast.qms.requirements import load_records
from digital_contrast.validation.runs import CompletedRun, current_run

MANIFEST = "manifest.json"
NOTES = "RELEASE_NOTES.md"
VALIDATION_DIR = Path("validation") / "reports"
EVIDENCE = ("The reference model is trained and validated on a procedural digital phantom only; "
            "it is not clinically validated and no clinical performance is claimed.")
PROTOCOLS_DIR = Path("validation") / "protocols"
# Never replaced by a silent "no vulnerabilities": the development machines reach the package
# registry only, so the audit there is not run or "unavailable".
AUDIT_REQUIRED = ("A dated vulnerability audit of every SOUP item of this record (the Python "
                  "closure with pip-audit or an equivalent, and the vendored and platform "
                  "components against OSV/NVD and the Debian security tracker), run on a "
                  "networked machine, must be attached to this release record before any "
                  "submission.")
VALIDATION_RUNS = Path("validation") / "runs"


class ReleaseRecordError(DigitalContrastError):
    """A release record that cannot be built: RELEASE_VERSION_INVALID, RELEASE_EXISTS,
    RELEASE_DIRTY_TREE, RELEASE_GAPS, RELEASE_NO_TEST_RUN, RELEASE_NO_VALIDATION,
    RELEASE_WHEEL_FAILED."""


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise ReleaseRecordError("RELEASE_DIRTY_TREE", f"git {' '.join(args)} failed: "
                                 f"{result.stderr.strip()}")
    return result.stdout


def git_status(repo: Path) -> str:
    """`git status --porcelain` with every untracked file listed (nothing filtered out)."""
    return _git(repo, "status", "--porcelain", "--untracked-files=all")


def git_commit(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD").strip()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_wheel(repo: Path, out_dir: Path) -> Path:
    """The device's wheel, built from the (clean) tree; no build isolation so that no network
    is needed and the locked setuptools of the environment is the one recorded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-q", "-w", str(out_dir), str(repo)],
                            capture_output=True, text=True, check=False)
    wheels = sorted(out_dir.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise ReleaseRecordError("RELEASE_WHEEL_FAILED", result.stderr.strip()[-500:])
    return wheels[0]


def _refuse_early(version: str, target: Path, repo: Path) -> None:
    try:
        canonical = str(Version(version))
    except InvalidVersion:
        raise ReleaseRecordError("RELEASE_VERSION_INVALID",
                                 f"{version!r} is not a PEP 440 version") from None
    if canonical != version:  # one folder name per version
        raise ReleaseRecordError("RELEASE_VERSION_INVALID",
                                 f"{version!r} is not in normal form: use {canonical!r}")
    if target.exists():
        raise ReleaseRecordError("RELEASE_EXISTS", f"{target} exists: a released version is "
                                 "never overwritten")
    dirty = git_status(repo)
    if dirty.strip():
        first = dirty.strip().splitlines()
        raise ReleaseRecordError("RELEASE_DIRTY_TREE", f"{len(first)} uncommitted change(s), "
                                 f"e.g. {', '.join(line.strip() for line in first[:3])}")


def _model_bundles(repo: Path, releases_dir: Path) -> list[dict[str, Any]]:
    """Released reference models and filed candidates (of any bundle format), with their
    bundle hash."""
    from digital_contrast.model.bundle import filed_bundle

    found = []
    for kind, root in (("reference", releases_dir / "models"),
                       ("candidate", repo / VALIDATION_DIR / "models")):
        for bundle_dir in sorted(root.glob("*/*/bundle")):
            bundle = filed_bundle(bundle_dir)
            found.append({"kind": kind, "use_case": bundle.use_case,
                          "model_version": bundle.model_version,
                          "bundle_sha256": bundle.sha256, "format": bundle.format,
                          "folder": str(bundle_dir.parent.relative_to(
                              repo if kind == "candidate" else releases_dir.parent))})
    return found


def _validation_runs(repo: Path, runs_root: Path) -> list[CompletedRun]:
    """The current run of every protocol (RELEASE_NO_VALIDATION when one has none): what the
    release's validation reports are, passed or failed."""
    runs, missing = [], []
    for protocol in sorted((repo / PROTOCOLS_DIR).glob("*.yaml")):
        run = current_run(runs_root, protocol)
        if run is None:
            missing.append(str(protocol.relative_to(repo)))
        else:
            runs.append(run)
    if missing:
        raise ReleaseRecordError(
            "RELEASE_NO_VALIDATION", f"no complete validation run of the current version of "
            f"{', '.join(missing)} in {runs_root}: run `digital-contrast validate --protocol "
            f"{missing[0]}` first")
    return runs


def render_test_report(run: TestRun, requirement_ids: list[str], documented: set[str]) -> str:
    """Markdown: counts by outcome, tests that did not pass, a verdict per requirement."""
    counts = Counter(case.outcome for case in run.cases.values())
    lines = [f"# Test report - {PRODUCT_NAME}", "", f"Source: `{Path(run.source).name}`, run "
             f"{run.timestamp or 'unknown'}; {len(run.cases)} tests.", "",
             "| outcome | tests |", "| --- | --- |"]
    lines += [f"| {outcome} | {n} |" for outcome, n in sorted(counts.items())]
    lines += ["", "## Tests that did not pass", ""]
    not_passed = [c for c in run.cases.values() if c.outcome != "passed"]
    lines += [f"- `{c.node_id}`: {c.outcome}"
              + (" (documents a known residual anomaly)" if c.node_id in documented else "")
              + (f" - {c.message}" if c.message else "") for c in not_passed] or ["None."]
    lines += ["", "## Verdict per requirement", "", "| requirement | tests | passed | verdict |",
              "| --- | --- | --- | --- |"]
    tests = run.requirement_tests()
    for rid in requirement_ids:
        outcomes = [run.cases[node].outcome for node in tests.get(rid, [])]
        verdict = ("no test" if not outcomes else "failed" if "failed" in outcomes
                   else "verified" if "passed" in outcomes else "not verified")
        lines.append(f"| {rid} | {len(outcomes)} | {outcomes.count('passed')} | {verdict} |")
    return "\n".join(lines) + "\n"


def anomalies_report(anomalies: list[ResidualAnomaly]) -> str:
    lines = [f"# Known residual anomalies - {PRODUCT_NAME}", "",
             "IEC 62304 5.8.2 and 5.8.3, from qms/anomalies.yaml.", ""]
    for a in anomalies:
        lines += [f"## {a.id}: {a.title}", "", f"Status: {a.status}. Affects: "
                  f"{', '.join(a.affected)}. Risks: {', '.join(a.risk)}.", "",
                  a.description, "", "Documented by: "
                  + ", ".join(f"`{t}`" for t in a.tests), "", f"Evaluation: {a.evaluation}", ""]
    return "\n".join(lines if anomalies else [*lines, "None."]) + "\n"


def overall_residual_risk(repo: Path, run: TestRun,
                          anomalies: list[ResidualAnomaly]) -> dict[str, Any]:
    """The risk file's overall residual risk conclusion for the release record: `conclusion`
    ("acceptable" / "not acceptable"), `statement`, `reasons`, `benefit`."""
    from digital_contrast.qms.anomalies import accepted_tests
    from digital_contrast.qms.risk import load_risk_file
    from digital_contrast.qms.risk import overall_residual_risk as overall

    risk_file, _ = load_risk_file(repo / "risk")
    assert risk_file is not None  # run_checks passed
    found = overall(risk_file, run.outcomes, run.requirement_tests(),
                    accepted=frozenset(accepted_tests(anomalies, run)))
    return {"conclusion": found["conclusion"], "statement": found["statement"],
            "reasons": found["open_items"], "benefit": found["benefit"]}


def release_notes(version: str, counts: dict[str, int], anomalies: list[ResidualAnomaly],
                  soup_findings: list[str], models: list[dict[str, Any]],
                  validations: list[CompletedRun], outside: list[Clause],
                  residual: dict[str, Any], vigilance: dict[str, Any] | None = None) -> str:
    lines = [f"# {PRODUCT_NAME} {version} - release notes", "",
             f"Package version {__version__}. {EVIDENCE}", "",
             "## Overall residual risk", "",
             f"Overall residual risk: **{residual['conclusion']}** (ISO 14971 clause 8, computed "
             "from risk/ and this release's test run; risk/risk_management_report.md).", ""]
    if residual["conclusion"] != "acceptable":
        lines += ["This build is for research use only: it supports no clinical claim.", ""]
    lines += [residual["statement"], ""]
    lines += [f"- {reason}" for reason in residual["reasons"]]
    lines += ["", "## Contents", ""]
    lines += [f"- {n} {what}" for what, n in counts.items()]
    lines += ["", "## Known residual anomalies", ""]
    lines += [f"- {a.id}: {a.title} (affects {', '.join(a.affected)}; risks "
              f"{', '.join(a.risk)}); evaluated in anomalies.md" for a in anomalies] or ["None."]
    lines += ["", "## Models", ""]
    lines += [f"- {m['kind']} {m['use_case']} {m['model_version']}: bundle "
              f"{m['bundle_sha256'][:16]} ({m['folder']})" for m in models] or ["None."]
    lines += ["", "## Validation", "", "The current run of each protocol, through the clinical "
              "DICOM path (`digital-contrast validate`); reports under validation/runs/.", ""]
    lines += [f"- {r.record.protocol} on {r.record.model_name} {r.record.model_version} (bundle "
              f"{r.record.bundle_sha256[:16]}): {'PASSED' if r.record.passed else 'FAILED'}, "
              f"{r.record.dataset}; run {r.run_id}" for r in validations]
    lines += ["", "## IEC 62304 clauses satisfied outside this repository", "",
              "Evidence the manufacturer holds; attach it before using this record:", ""]
    lines += [f"- {c.clause} {c.title}: {c.outside_repository.evidence} (held by "
              f"{c.outside_repository.holder}). Status: {c.outside_repository.status}"
              for c in outside if c.outside_repository] or ["None."]
    lines += ["", "## SOUP licence findings (to resolve before distribution)", ""]
    lines += [f"- {f}" for f in soup_findings] or ["None."]
    if vigilance is not None:
        lines += ["", "## SOUP vulnerability audit and anomaly reviews", ""]
        audit = vigilance["vulnerability_audit"]
        lines.append(f"- Vulnerability audit: {audit['status']}"
                     + (f" ({audit['checked_at']})" if audit.get("checked_at") else "")
                     + (f" - {audit['reason']}" if audit.get("reason") else ""))
        incomplete = vigilance["anomaly_reviews_incomplete"]
        lines.append(f"- Known-anomaly reviews incomplete: {len(incomplete)} "
                     f"({', '.join(incomplete) or 'none'})")
        lines += [f"- **Before any submission:** {s}" for s in vigilance["before_submission"]]
    return "\n".join(lines) + "\n"


def soup_vigilance(audit_record: dict[str, Any] | None, reviews_dir: Path) -> dict[str, Any]:
    """What the release record says of the vulnerability audit and the anomaly reviews, with
    what must be attached before a submission when either is not complete."""
    from digital_contrast.qms.soup import load_reviews

    if audit_record is None:
        audit: dict[str, Any] = {"status": "not run",
                                 "reason": "release build without --audit (no network call)"}
    else:
        audit = {k: audit_record[k] for k in ("status", "checked_at", "tool", "reason")
                 if k in audit_record}
        if "vulnerabilities" in audit_record:
            audit["vulnerabilities"] = len(audit_record["vulnerabilities"])
    reviews, _ = load_reviews(reviews_dir)
    incomplete = sorted(r.review.item for r in reviews.values()
                        if r.review.result == "incomplete")
    before = [] if audit["status"] == "completed" else [AUDIT_REQUIRED]
    if incomplete:
        before.append(f"The known-anomaly reviews of {len(incomplete)} SOUP items are "
                      "incomplete (their records name the sources not consulted): complete "
                      "them online and attach the updated records.")
    return {"vulnerability_audit": audit, "anomaly_reviews_incomplete": incomplete,
            "before_submission": before}


def _write_documents(staging: Path, repo: Path, run: TestRun, anomalies: list[ResidualAnomaly],
                     audit: bool) -> tuple[list[str], dict[str, Any]]:
    """The generated documents, by the `qms` writers; returns the SOUP licence findings and
    the SOUP vigilance statement (audit status, incomplete anomaly reviews)."""
    from digital_contrast.qms.generate import (
        design_documents,
        risk_documents,
        soup_documents,
        trace_documents,
    )
    from digital_contrast.qms.risk import load_risk_file
    from digital_contrast.qms.soup import load_soup, runtime_closure, soup_rows

    records, _ = load_records(repo / "qms")
    risk_file, _ = load_risk_file(repo / "risk")
    assert risk_file is not None  # run_checks passed
    trace_documents(staging / "trace", records, run, risk_file)
    risk_documents(staging / "risk", risk_file, run, anomalies)
    closure = runtime_closure()
    # The audit is a network call.
    _, audit_record = soup_documents(staging / "soup", closure, audit=audit)
    design_documents(staging / "design", records, repo)
    soup, _ = load_soup(repo / "qms" / "soup.yaml")
    rows = soup_rows(soup, closure) if soup else []
    # Platform components used by the tests only are never distributed with the device.
    licences = {r["name"]: str(r.get("licence") or r.get("metadata_licence") or "unknown")
                for r in rows if r.get("use") != ["test"]}
    return ([f"{name}: licence {licence}" for name, licence in licences.items()
             if licence_needs_decision(licence)],
            soup_vigilance(audit_record, repo / "qms" / "soup" / "reviews"))


def licence_needs_decision(licence: str) -> bool:
    """Unknown, or strong copyleft (GPL, AGPL; not LGPL): distributing the device under a
    proprietary licence needs a decision first."""
    text = licence.lower()
    return "unknown" in text or re.search(r"(?<!l)gpl", text) is not None


def build_release(version: str, *, commands: set[str], out_root: Path | None = None,
                  junit: Path = DEFAULT_JUNIT, repo: Path = REPO_ROOT,
                  audit: bool = False) -> Path:
    """Write `out_root/<version>/` (default: the settings' releases folder) and return it.

    `commands` are the CLI's command names, for the clause-map check (the command-line module
    is imported by no item, so its caller passes them)."""
    releases_dir = out_root or get_settings().releases_dir
    target = releases_dir / version
    _refuse_early(version, target, repo)
    try:
        run = read_junit(junit)
    except JunitError as exc:
        raise ReleaseRecordError("RELEASE_NO_TEST_RUN", str(exc)) from None
    stale = check_binding(run, repo)
    if stale:  # a run of other sources is no evidence for these
        raise ReleaseRecordError("RELEASE_TEST_RUN_STALE", stale[0].message)
    result = run_checks(run, commands=commands, repo=repo)
    if result.problems:
        raise ReleaseRecordError("RELEASE_GAPS", f"qms check found {len(result.problems)} "
                                 "problem(s): " + "; ".join(map(str, result.problems[:5])))
    anomalies, _, _ = load_anomalies(repo / "qms" / "anomalies.yaml")
    records, _ = load_records(repo / "qms")
    models = _model_bundles(repo, releases_dir)
    validations = _validation_runs(repo, get_settings().build_dir / "validation")
    releases_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=releases_dir, prefix=".incomplete-") as scratch:
        staging = Path(scratch) / "release"
        staging.mkdir()
        wheel = build_wheel(repo, Path(scratch) / "wheel")
        shutil.copyfile(wheel, staging / wheel.name)
        findings, vigilance = _write_documents(staging, repo, run, anomalies, audit)
        (staging / "test_report.md").write_text(
            render_test_report(run, sorted(records.requirements), documented_tests(anomalies)))
        (staging / "anomalies.md").write_text(anomalies_report(anomalies))
        if (repo / VALIDATION_DIR).is_dir():
            shutil.copytree(repo / VALIDATION_DIR, staging / VALIDATION_DIR)
        for validation in validations:
            shutil.copytree(validation.folder, staging / VALIDATION_RUNS / validation.run_id)
        residual = overall_residual_risk(repo, run, anomalies)
        (staging / NOTES).write_text(release_notes(version, result.counts, anomalies,
                                                   findings, models, validations, result.outside,
                                                   residual, vigilance))
        files = {str(p.relative_to(staging)): sha256_file(p)
                 for p in sorted(staging.rglob("*")) if p.is_file()}
        manifest = {
            "product": PRODUCT_NAME, "version": version, "package_version": __version__,
            "git_commit": git_commit(repo), "built_at": datetime.now(UTC).isoformat(),
            "build_environment": {
                "python": sys.version.split()[0], "platform": platform.platform(),
                "torch": _installed("torch"),
                "installed_distributions": sum(1 for _ in importlib.metadata.distributions())},
            "wheel": {"file": wheel.name, "sha256": files[wheel.name]},
            "models": models,
            "validation": {
                "records": sorted(f for f in files if f.startswith(str(VALIDATION_DIR))),
                "runs": [{"run_id": r.run_id, "protocol": r.record.protocol,
                          "protocol_sha256": r.record.protocol_sha256,
                          "bundle_sha256": r.record.bundle_sha256, "passed": r.record.passed}
                         for r in validations]},
            "junit": {"file": Path(junit).name, "sha256": sha256_file(Path(junit)),
                      "timestamp": run.timestamp, "tests": len(run.cases), "tree": run.tree},
            "counts": result.counts,
            "known_anomalies": [a.id for a in anomalies],
            "clauses_outside_repository": [
                {"clause": c.clause, "title": c.title} | c.outside_repository.model_dump()
                for c in result.outside if c.outside_repository],
            "soup_vigilance": vigilance,
            "evidence_statement": EVIDENCE,
            "overall_residual_risk": residual["conclusion"],
            "overall_residual_risk_reasons": residual["reasons"],
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        staging.rename(target)  # same file system: atomic
    return target


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


__all__ = ["ReleaseRecordError", "build_release", "build_wheel", "git_commit", "git_status",
           "sha256_file"]

"""The generated documents of the technical file, one function each, with the same inputs for
`digital-contrast qms <document>` and for a release record."""

import json
from pathlib import Path

from digital_contrast.config import REPO_ROOT
from digital_contrast.errors import DigitalContrastError
from digital_contrast.qms.anomalies import ResidualAnomaly, accepted_tests
from digital_contrast.qms.design import check_design, read_detailed_design, write_design
from digital_contrast.qms.junit_report import TestRun
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import Records, load_records
from digital_contrast.qms.risk import RiskFile, write_risk_report
from digital_contrast.qms.soup import (
    Dist,
    audit_vulnerabilities,
    measure_platform,
    write_sbom,
    write_soup_list,
)
from digital_contrast.qms.trace import write_trace
from digital_contrast.qms.yaml_records import Problem

AUDIT_FILE = "vulnerability_audit.json"


def valid_records(qms_dir: Path = QMS_DIR) -> Records:
    """The requirement and item records; QMS_RECORD_INVALID naming the first problems."""
    records, problems = load_records(qms_dir)
    if problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    return records


def controls_by_requirement(risk_file: RiskFile | None) -> dict[str, list[str]]:
    """Requirement id -> the risk controls it implements (none without a risk file)."""
    controls: dict[str, list[str]] = {}
    for control in risk_file.controls.values() if risk_file else []:
        for rid in control.implemented_by:
            controls.setdefault(rid, []).append(control.id)
    return controls


def trace_documents(out: Path, records: Records, run: TestRun,
                    risk_file: RiskFile | None) -> list[Path]:
    return write_trace(out, records, run, controls_by_requirement(risk_file))


def risk_documents(out: Path, risk_file: RiskFile, run: TestRun,
                   anomalies: list[ResidualAnomaly]) -> list[Path]:
    """A control left open only by tests documenting a known anomaly reads as verified."""
    return write_risk_report(out, risk_file, run.outcomes, run.requirement_tests(),
                             accepted=frozenset(accepted_tests(anomalies, run)))


def soup_documents(out: Path, closure: dict[str, Dist], *, audit: bool
                   ) -> tuple[list[Path], dict[str, object] | None]:
    """SOUP list, SBOM and, with `audit` (a network call), the vulnerability audit record; the
    platform is measured once for both documents."""
    platform = measure_platform()
    paths = write_soup_list(out, closure=closure, platform=platform)
    paths.append(write_sbom(out / "sbom.cdx.json", closure, platform=platform))
    if not audit:
        return paths, None
    record = audit_vulnerabilities(closure, platform=platform)
    paths.append(out / AUDIT_FILE)
    paths[-1].write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return paths, record


def design_documents(out: Path, records: Records, repo: Path = REPO_ROOT
                     ) -> tuple[list[Path], list[Problem]]:
    """DC-SDD with its verification; the design problems it states."""
    design = read_detailed_design(records, repo)
    problems = check_design(design, records)
    return write_design(out, design, problems, repo), problems

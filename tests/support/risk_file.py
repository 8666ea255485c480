"""Shared helpers of the risk-file tests: a private copy of the records, runs in which every
verifying test passed, edits and problems at their lines."""

import re
import shutil
from pathlib import Path

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import load_records
from digital_contrast.qms.risk import RISK_DIR, RiskFile, check_risk_file, load_risk_file
from digital_contrast.qms.yaml_records import Problem

Run = tuple[dict[str, str], dict[str, list[str]]]


def node(rid: str) -> str:
    return f"tests/unit/test_fake.py::test_{rid.lower().replace('-', '_')}"


def passing_run(rf: RiskFile, per_requirement: int = 1) -> Run:
    """A run in which every implementing requirement and every named test has passed; each
    requirement has `per_requirement` tests (the evidence a control's bound is computed from)."""
    outcomes: dict[str, str] = {}
    requirement_tests: dict[str, list[str]] = {}
    for control in rf.controls.values():
        for rid in control.implemented_by:
            nodes = [node(rid)] + [f"{node(rid)}[{k}]" for k in range(1, per_requirement)]
            outcomes |= dict.fromkeys(nodes, "passed")
            requirement_tests[rid] = nodes
        for ref in control.verified_by:
            outcomes[ref if "::" in ref else f"{ref}::test_case[1]"] = "passed"
    return outcomes, requirement_tests


# Enough tests per requirement that every control's bound supports the shipped claims (the
# real run's counts are in docs/regulatory.md).
GENEROUS = 60


def copy_risk_file(tmp_path: Path) -> Path:
    """A private copy of the shipped risk file and of the records it is checked against."""
    shutil.copytree(RISK_DIR, tmp_path / "risk")
    shutil.copytree(QMS_DIR, tmp_path / "qms")
    copy_validation_records(tmp_path)
    return tmp_path


def copy_validation_records(root: Path) -> None:
    """The signed validation records the controls cite, with the protocols they pin and the
    release keys that signed them."""
    shutil.copytree(REPO_ROOT / "validation" / "protocols", root / "validation" / "protocols")
    shutil.copytree(REPO_ROOT / "releases" / "keys", root / "releases" / "keys",
                    dirs_exist_ok=True)
    for record in REPO_ROOT.glob("validation/reports/models/*/*/validation_record.json"):
        target = root / record.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record, target)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                if needle in line)


def load(root: Path) -> RiskFile:
    rf, problems = load_risk_file(root / "risk")
    assert rf is not None and problems == []
    return rf


def check(root: Path, rf: RiskFile, run: Run | None = None) -> list[Problem]:
    outcomes, requirement_tests = run or passing_run(rf, GENEROUS)
    records, problems = load_records(root / "qms")
    assert problems == []
    return check_risk_file(rf, records, outcomes, requirement_tests)


def at(problems: list[Problem], path: Path, line: int, text: str) -> Problem:
    found = [p for p in problems if p.file.endswith(path.name) and p.line == line
             and text in p.message]
    assert found, f"no problem at {path.name}:{line} about {text!r} in {problems}"
    return found[0]


def all_acceptable(root: Path) -> None:
    """Every residual claimed S1/P4: acceptable whatever the evidence computes (<= P4)."""
    for path in (root / "risk" / "risks").glob("*.yaml"):
        text = re.sub(r"residual: \{severity: S\d, probability: P\d\}",
                      "residual: {severity: S1, probability: P4}", path.read_text("utf-8"))
        path.write_text(text, encoding="utf-8")

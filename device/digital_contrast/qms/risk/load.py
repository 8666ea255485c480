"""Loading the risk file from `risk/`: every schema problem named at its file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.risk.schema import Control, Policy, Risk
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path, duplicates

RISK_DIR = REPO_ROOT / "risk"


@dataclass(frozen=True)
class RiskFile:
    """The validated records, with their documents so that checks can name lines."""

    policy: Policy
    risks: dict[str, Risk]
    controls: dict[str, Control]
    policy_doc: YamlDocument
    risk_docs: dict[str, YamlDocument]
    controls_doc: YamlDocument | None
    control_rows: dict[str, int] = field(default_factory=dict)  # id -> index in `controls:`
    # The repository the evidence paths (validation records, field data) are relative to.
    root: Path = REPO_ROOT

    def level(self, severity: str, probability: str) -> str:
        return self.policy.level(severity, probability)

    def risk_problem(self, risk_id: str, loc: tuple[str | int, ...], message: str) -> Problem:
        return self.risk_docs[risk_id].problem(loc, message)

    def control_problem(self, control_id: str, loc: tuple[str | int, ...],
                        message: str) -> Problem:
        assert self.controls_doc is not None  # a control exists only if its file loaded
        return self.controls_doc.problem(("controls", self.control_rows[control_id], *loc),
                                         message)


def load_risk_file(risk_dir: Path = RISK_DIR) -> tuple[RiskFile | None, list[Problem]]:
    """The risk file, or None when the policy cannot be read; every schema problem listed."""
    problems: list[Problem] = []
    policy_doc, found = YamlDocument.load(risk_dir / "policy.yaml")
    problems += found
    policy = None
    if policy_doc is not None:
        policy, found = policy_doc.validate((), policy_doc.data, Policy)
        problems += found

    controls: dict[str, Control] = {}
    rows: dict[str, int] = {}
    controls_doc, found = YamlDocument.load(risk_dir / "controls.yaml")
    problems += found
    if controls_doc is not None:
        raw = controls_doc.data.get("controls") if isinstance(controls_doc.data, dict) else None
        # One id per row (a placeholder where there is none) so that indexes name lines.
        ids = [row["id"] if isinstance(row, dict) and isinstance(row.get("id"), str)
               else f"#{n}" for n, row in enumerate(raw if isinstance(raw, list) else [])]
        problems += duplicates(controls_doc, "controls", ids, "control")
        for index, rid in enumerate(ids):
            rows.setdefault(rid, index)
        records, found = controls_doc.validate_list("controls", Control)
        problems += found
        for control in records:
            controls.setdefault(control.id, control)

    risks: dict[str, Risk] = {}
    risk_docs: dict[str, YamlDocument] = {}
    paths = sorted((risk_dir / "risks").glob("*.yaml")) if (risk_dir / "risks").is_dir() else []
    if not paths:
        problems.append(Problem(display_path(risk_dir / "risks"), None,
                                "no risk records (risks/RISK-NNN.yaml)"))
    for path in paths:
        doc, risk, found = YamlDocument.load_as(path, Risk)
        problems += found
        if doc is None or risk is None:
            continue
        if path.stem != risk.id:
            problems.append(doc.problem(("id",), f"{risk.id} is in {path.name}; a risk's file "
                                        f"is named after its id ({risk.id}.yaml)"))
        if risk.id in risks:
            problems.append(doc.problem(("id",), f"duplicate risk id {risk.id} (also in "
                                        f"{risk_docs[risk.id].name})"))
            continue
        risks[risk.id] = risk
        risk_docs[risk.id] = doc

    if policy is None or policy_doc is None:
        return None, problems
    for risk in risks.values():
        risk._policy = policy  # private attributes stay settable on a frozen model
    return RiskFile(policy, risks, controls, policy_doc, risk_docs, controls_doc, rows,
                    risk_dir.parent), problems

"""The faults `qms mutate` seeds: one or more for every rule of `qms check`.

Each names the fault in a reviewer's words and the reason the check must give (a regex over the
reported problem). Seeds edit the records as a careless or hurried change would; a seed whose
text is no longer in the records fails the run (qms/mutate.py), so the catalogue follows the
records it mutates. Add a mutation with every new rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from digital_contrast.qms.junit_report import FAILED, PASSED, TestCase, TestRun
from digital_contrast.qms.mutate import Mutation, Workspace

REQUIREMENTS = "qms/requirements/software_requirements.yaml"
CLAUSES = "qms/clause_map.yaml"
RISK_001 = "risk/risks/RISK-001.yaml"
RISK_002 = "risk/risks/RISK-002.yaml"
SDP = "docs/qms/software-development-plan.md"
POLICY = "risk/policy.yaml"
CONTROLS = "risk/controls.yaml"
SOUP = "qms/soup.yaml"
REVIEWS = "qms/soup/reviews"
EXAMINED = "docs/regulatory.md"  # the file the seeded verification records examine
IFU = "docs/instructions-for-use.md"
PV_REVIEW = "risk/usecases/abdomen-pv.yaml"
# SI-PHANTOM may use SI-SYSTEM and SI-IMAGING only; SI-STORE is out of its reach.
PHANTOM_MODULE = "device/digital_contrast/phantom/noise.py"
FORBIDDEN_MODULE = "digital_contrast.store.tables"


def _field(requirement: str, name: str) -> str:
    """A regex up to `name:` of the requirement's record (the key included, as group 1)."""
    return rf"(  - id: {requirement}\n(?:    .*\n)*?    {name}:)"


def _untested_requirement(ws: Workspace) -> None:
    ws.append(REQUIREMENTS, "  - id: SRS-QMS-099\n    title: A requirement nobody tests\n"
                            "    statement: >-\n      Added by a change and never verified.\n"
                            "    category: regulatory\n    parents: [UN-006]\n"
                            "    software_items: [SI-QMS]\n    risk_control: false\n"
                            "    verification: test\n")


def _fail_a_test(run: TestRun) -> TestRun:
    node = next(n for n, c in sorted(run.cases.items()) if c.requirements and c.outcome == PASSED)
    cases = dict(run.cases)
    cases[node] = dataclasses.replace(cases[node], outcome=FAILED, message="seeded failure")
    return dataclasses.replace(run, cases=cases)


def _test_of_unknown_requirement(run: TestRun) -> TestRun:
    node = "tests/unit/test_seeded.py::test_of_a_requirement_that_does_not_exist"
    return dataclasses.replace(run, cases={**run.cases, node: TestCase(
        node, ("SRS-NOPE-999",), PASSED, 0.1)})


def _changed_during_run(run: TestRun) -> TestRun:
    return dataclasses.replace(run, tree_at_end="0" * 40)


def _forbidden_runtime_import(run: TestRun) -> TestRun:
    edge = ("digital_contrast.phantom.noise", FORBIDDEN_MODULE)
    return dataclasses.replace(run, imports=(*run.imports, edge))


def _soup_upgraded_behind_its_back(closure: dict[str, Any]) -> dict[str, Any]:
    dist = closure["numpy"]
    return {**closure, "numpy": dataclasses.replace(dist, version="0.0.1")}


def _verification_record(ws: Workspace, requirement: str = "SRS-QMS-001", *, trusted: bool,
                         inspected: bool = True, **changes: Any) -> None:
    """Switch the requirement to verification by inspection (unless `inspected` is False) and
    file a record of it signed by a fresh key, committed as a release key of the copy when
    `trusted` (the real release key never leaves its offline folder)."""
    # Imported here: keys are only made when a mutation that needs one runs.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from digital_contrast.keys.signing import Signer
    from digital_contrast.qms.verification_records import write_record

    if inspected:
        ws.sub(REQUIREMENTS, _field(requirement, "verification") + " test", r"\1 inspection")
    signer = Signer(Ed25519PrivateKey.generate())
    if trusted:
        ws.write("releases/keys/release-mutate.pub", signer.public_line)
    ws.write(f"qms/verification/{requirement}.json", "")  # registered for removal
    fields = {"method": "inspection", "performed_by": "seeded record",
              "procedure": "Read the regulatory guide against the requirement.",
              "examined": [ws.path(EXAMINED)], "result": "pass",
              "findings": "Seeded by qms mutate."} | changes
    write_record(ws.root, signer, requirement=requirement, today=dt.date(2026, 12, 7), **fields)


def _stale_verification_record(ws: Workspace) -> None:
    _verification_record(ws, trusted=True)
    ws.append(EXAMINED, "\nA paragraph added after the inspection.\n")


def _altered_verification_record(ws: Workspace) -> None:
    _verification_record(ws, trusted=True)
    ws.sub("qms/verification/SRS-QMS-001.json", r'"seeded record"', '"someone else"')


def _review(name: str) -> str:
    return f"{REVIEWS}/{name}.yaml"


def _review_of_no_item(ws: Workspace) -> None:
    text = ws.path(_review("numpy")).read_text(encoding="utf-8")
    ws.write(_review("left-pad"), text.replace("item: numpy", "item: left-pad"))


def _review_misnamed(ws: Workspace) -> None:
    ws.write(_review("numpy2"), ws.path(_review("numpy")).read_text(encoding="utf-8"))
    ws.remove(_review("numpy"))


def _field_data_of_another_control(ws: Workspace) -> None:
    ws.write("risk/field/RC-006.yaml", "control: RC-005\nsource: vigilance\nperiod: year 2027\n"
                                       "uses: 10\nfailures: 1\n")
    ws.sub(CONTROLS, r"(implemented_by: \[SRS-CONF-007\]\n    verified_by: \[\]\n    evidence:\n"
                     r"      - kind: tests\n)", r"\1      - kind: field\n        record: "
                     "risk/field/RC-006.yaml\n")


MUTATIONS: list[Mutation] = [
    # Requirements and their verification
    Mutation("requirement-unknown-parent", "a requirement traced to a user need that does not "
             "exist", r"unknown user need UN-999",
             seed=lambda ws: ws.sub(REQUIREMENTS, _field("SRS-QMS-001", "parents") +
                                    r" \[UN-006\]", r"\1 [UN-999]")),
    Mutation("requirement-unknown-item", "a requirement allocated to a software item that does "
             "not exist", r"unknown software item SI-NOWHERE",
             seed=lambda ws: ws.sub(REQUIREMENTS, _field("SRS-QMS-001", "software_items") +
                                    r" \[SI-QMS\]", r"\1 [SI-NOWHERE]")),
    Mutation("requirement-untested", "a new requirement verified by test that no test names",
             r"SRS-QMS-099 is verified by test but no test names it",
             seed=_untested_requirement),
    Mutation("requirement-test-failed", "a test of a requirement failed in the run",
             r"SRS-[A-Z]+-\d+: (\d+ of its tests failed|none of its \d+ test\(s\) passed)",
             evidence=_fail_a_test),
    Mutation("test-unknown-requirement", "a test names a requirement that does not exist",
             r"names unknown requirement SRS-NOPE-999", evidence=_test_of_unknown_requirement),
    Mutation("statement-placeholder", "a requirement statement left as TBD",
             r"statement holds the placeholder TBD|statement is a placeholder",
             seed=lambda ws: ws.sub(REQUIREMENTS, r"(  - id: SRS-IMG-001\n    title: .*\n"
                                    r"    statement: )>-\n(      .*\n)+", r"\1TBD\n")),
    Mutation("inspection-without-record", "a requirement switched to verification by "
             "inspection with no record of the inspection",
             r"SRS-QMS-001 is verified by inspection but has no signed verification record",
             seed=lambda ws: ws.sub(REQUIREMENTS, _field("SRS-QMS-001", "verification") +
                                    " test", r"\1 inspection")),
    Mutation("inspection-record-untrusted", "an inspection record signed by a key the "
             "technical file does not trust", r"verification record refused \(SIGNER_UNTRUSTED\)",
             seed=lambda ws: _verification_record(ws, trusted=False)),
    Mutation("inspection-record-altered", "an inspection record edited after it was signed",
             r"verification record refused \(SIGNATURE_INVALID\)",
             seed=_altered_verification_record),
    Mutation("inspection-record-stale", "a file examined by an inspection changed after it",
             r"SRS-QMS-001: docs/regulatory\.md changed after its inspection .*: the record is "
             "stale", seed=_stale_verification_record),
    Mutation("inspection-failed", "an inspection that did not pass",
             r"SRS-QMS-001: its inspection did not pass",
             seed=lambda ws: _verification_record(ws, trusted=True, result="fail",
                                                  findings="The statement is not met.")),
    Mutation("verification-record-orphan", "a verification record for a requirement verified "
             "by test", r"SRS-QMS-002 needs no verification record",
             seed=lambda ws: _verification_record(ws, "SRS-QMS-002", trusted=True,
                                                  inspected=False)),
    # The test run as evidence
    Mutation("junit-stale", "a junit report from before the last change of the sources",
             r"the junit report ran on tree \w+, but the working tree is",
             seed=lambda ws: ws.append("device/digital_contrast/qms/check.py",
                                       "\n# changed after the tests ran\n"),
             stale_report=True),
    Mutation("junit-unbound", "a junit report that names no tree (not written by the "
             "requirement plugin)", r"the junit report names no tree it ran on",
             evidence=lambda run: dataclasses.replace(run, tree=None, tree_at_end=None)),
    Mutation("junit-sources-changed-during-run", "sources changed while the tests ran",
             r"the sources changed during the test run", evidence=_changed_during_run),
    # Architecture and detailed design
    Mutation("import-outside-may-use", "a module imports an item its item may not use",
             r"phantom\.noise \(SI-PHANTOM\) imports digital_contrast\.store\.tables \(SI-STORE\)"
             r": SI-STORE is not in SI-PHANTOM's may_use",
             seed=lambda ws: ws.append(PHANTOM_MODULE,
                                       f"\nfrom {FORBIDDEN_MODULE} import Job  # noqa\n")),
    Mutation("import-dynamic-literal", "a module imports an item its item may not use through "
             "importlib with a literal name",
             r"phantom\.noise \(SI-PHANTOM\) imports digital_contrast\.store\.tables",
             seed=lambda ws: ws.append(PHANTOM_MODULE, "\nimport importlib\n\n_TABLES = "
                                       f"importlib.import_module({FORBIDDEN_MODULE!r})\n")),
    Mutation("import-seen-at-run-time", "a module imports an item its item may not use under a "
             "name computed at run time, seen by the import audit of the test run",
             r"phantom\.noise \(SI-PHANTOM\) imports at run time \(import audit of the test "
             r"run\) digital_contrast\.store\.tables", evidence=_forbidden_runtime_import),
    Mutation("module-without-item", "a new subpackage no software item claims",
             r"subpackage digital_contrast\.seeded has no software item",
             seed=lambda ws: ws.write("device/digital_contrast/seeded/__init__.py",
                                      '"""A subpackage added without an item."""\n')),
    Mutation("module-without-docstring", "a new module without its docstring (its unit's "
             "purpose)", r"digital_contrast\.phantom\.seeded has no module docstring",
             seed=lambda ws: ws.write("device/digital_contrast/phantom/seeded.py",
                                      "LIMIT = 1\n")),
    Mutation("architecture-diagram-stale", "the architecture document's diagram edited by hand",
             r"the dependency diagram is not the one generated",
             seed=lambda ws: ws.sub("docs/architecture.md", r"^    SI_PHANTOM --> SI_IMAGING\n",
                                    "")),
    # Clause map
    Mutation("clause-missing", "a required clause dropped from the clause map",
             r"clause 9 is missing from the map",
             seed=lambda ws: ws.sub(CLAUSES, r'^  - \{clause: "9", .*\n', "")),
    Mutation("clause-evidence-missing", "a clause cites a guide that does not exist",
             r"clause 5\.1\.2: docs/qms/plan\.md does not exist",
             seed=lambda ws: ws.sub(CLAUSES, r'(clause: "5\.1\.2", .*?doc: )docs/qms/software-'
                                    r'development-plan\.md', r"\1docs/qms/plan.md")),
    Mutation("clause-evidence-swapped", "a clause's evidence swapped for README.md",
             r"clause 5\.1\.1: README\.md does not hold",
             seed=lambda ws: ws.sub(CLAUSES, r'(clause: "5\.1\.1", .*?doc: )docs/qms/software-'
                                    r'development-plan\.md', r"\1README.md")),
    Mutation("clause-evidence-content-removed", "the section a clause cites removed from its "
             "guide", r"clause 9: docs/qms/maintenance-and-problem-resolution\.md does not hold",
             seed=lambda ws: ws.sub("docs/qms/maintenance-and-problem-resolution.md",
                                    r"^## 4\. Problem resolution \(9\)\n", "## 4. Problems\n")),
    Mutation("clause-evidence-without-holds", "a clause's evidence with no declared content",
             r"clause 5\.1\.2: docs/qms/software-development-plan\.md: no `holds`",
             seed=lambda ws: ws.sub(CLAUSES, r'(clause: "5\.1\.2", .*?), holds: \[[^]]*\]',
                                    r"\1")),
    Mutation("process-document-without-history", "a process document's revision history "
             "removed", r'docs/qms/software-development-plan\.md: has no "Revision history" '
             "section",
             seed=lambda ws: ws.sub(SDP, r"^## Revision history$", "## Revisions")),
    Mutation("process-document-history-empty", "every entry of a process document's revision "
             "history deleted", r'docs/qms/software-development-plan\.md:\d+: its "Revision '
             'history" section has no entry',
             seed=lambda ws: ws.sub(SDP, r"(^\| \d+\.\d+ \| \d{4}-\d{2}-\d{2} \|.*\n)+", "")),
    # Risk file
    Mutation("risk-control-undefined", "a risk names a control that does not exist",
             r"RC-999 is not defined in risk/controls\.yaml",
             seed=lambda ws: ws.sub(RISK_002, r"^controls: \[RC-004,",
                                    "controls: [RC-999, RC-004,")),
    Mutation("risk-without-control", "a risk's controls removed", r"RISK-002 has no risk control",
             seed=lambda ws: ws.sub(RISK_002, r"^controls: \[.*\]$", "controls: []")),
    Mutation("control-requirement-not-marked", "a requirement implementing a control no longer "
             "marked as a risk control", r"SRS-CONF-001 implements RC-001 but is not marked",
             seed=lambda ws: ws.sub(REQUIREMENTS, _field("SRS-CONF-001", "risk_control") +
                                    " true", r"\1 false")),
    Mutation("risk-controls-cut-residual-unchanged", "a risk's controls cut to one with its "
             "residual claim unchanged", r"RISK-001 claims P\d but its evidence supports P\d "
             "at best",
             seed=lambda ws: ws.sub(RISK_001, r"^controls: \[RC-001, .*\]$", "controls: [RC-012]")),
    Mutation("residual-claim-typed-lower", "a residual probability typed lower than its "
             "evidence supports", r"RISK-004 claims P1 but its evidence supports P\d at best",
             seed=lambda ws: ws.sub("risk/risks/RISK-004.yaml", r"^residual: \{severity: (S\d), "
                                    r"probability: P\d\}", r"residual: {severity: \1, "
                                    "probability: P1}")),
    Mutation("independence-over-a-foreign-control", "an independence argument naming a "
             "control the risk does not have", r"RISK-001: the independence argument names "
             r"RC-030, which is not one of its controls",
             seed=lambda ws: ws.sub(RISK_001, r"^  controls: \[RC-001, RC-010, RC-012\]$",
                                    "  controls: [RC-001, RC-010, RC-030]")),
    Mutation("probability-bands-gap", "a gap between two probability bands of the policy",
             r"probability band P3 .* does not follow P2, which ends at",
             seed=lambda ws: ws.sub(POLICY, r"^    lower: 1\.0e-4$", "    lower: 2.0e-4")),
    Mutation("probability-bands-short", "the probability bands not reaching 1",
             r"probability band P5 ends at 0\.5, not 1",
             seed=lambda ws: ws.sub(POLICY, r"^    upper: 1\.0$", "    upper: 0.5")),
    Mutation("evidence-unknown-criterion", "a control's validation evidence names a criterion "
             "its record does not have", r"RC-013: evidence not usable: .*has no criterion "
             r"low_confidence \(nowhere\)",
             seed=lambda ws: ws.sub(CONTROLS, r"\{metric: low_confidence, stratum: iso-ilt\}",
                                    "{metric: low_confidence, stratum: nowhere}")),
    Mutation("evidence-median-criterion", "a median criterion taken as a per-case failure rate",
             r"RC-013: evidence not usable: median lumen_dice \(primary\) is not required of "
             "every case",
             seed=lambda ws: ws.sub(CONTROLS, r"\{metric: low_confidence, stratum: iso-ilt\}",
                                    "{metric: lumen_dice, stratum: primary}")),
    Mutation("evidence-record-missing", "a control's validation evidence pointing at a record "
             "that does not exist", r"RC-013: evidence not usable: .*aaa-cta/9\.9\.9/"
             r"validation_record\.json cannot be read",
             seed=lambda ws: ws.sub(CONTROLS, r"aaa-cta/2\.1\.0/validation_record\.json",
                                    "aaa-cta/9.9.9/validation_record.json")),
    Mutation("control-without-evidence", "a control with neither evidence nor a reason for no "
             "credit", r"give either evidence \(tests, validation, field\) or no_credit",
             seed=lambda ws: ws.sub(CONTROLS, r"(implemented_by: \[SRS-CONF-007\]\n    "
                                    r"verified_by: \[\]\n)    evidence:\n      - kind: tests\n",
                                    r"\1")),
    Mutation("field-record-of-another-control", "field data of one control credited to "
             "another", r"RC-006: evidence not usable: risk/field/RC-006\.yaml is field data "
             "of RC-005, not RC-006", seed=_field_data_of_another_control),
    Mutation("benefit-risk-placeholder", "a benefit-risk analysis left as TBD",
             r"benefit_risk holds the placeholder TBD|benefit_risk is a placeholder",
             seed=lambda ws: ws.sub(RISK_001, r"^benefit_risk: >-\n(  .*\n)+",
                                    "benefit_risk: TBD\n")),
    Mutation("risk-field-empty", "a risk's harm left empty", r"harm is empty",
             seed=lambda ws: ws.sub(RISK_002, r"^harm: .*$", 'harm: ""')),
    Mutation("risk-field-not-applicable", "a risk's harm given as n/a",
             r"harm is a placeholder \('n/a'\)",
             seed=lambda ws: ws.sub(RISK_002, r"^harm: .*$", "harm: n/a")),
    Mutation("guide-placeholder", "a step of a guide left as a to-do marker",
             r"docs/operations\.md:\d+: holds the placeholder TODO",
             seed=lambda ws: ws.append("docs/operations.md", "\nStep three: TODO.\n")),
    Mutation("anomaly-unknown-risk", "a known anomaly concerning a risk that does not exist",
             r"ANOM-001: unknown risk RISK-999",
             seed=lambda ws: ws.sub("qms/anomalies.yaml", r"risk: \[RISK-014, RISK-001\]",
                                    "risk: [RISK-014, RISK-999]")),
    # Device record and SOUP
    Mutation("device-unknown-use-case", "the device record lists a use case that has no "
             "definition", r"unknown use case liver-arterial",
             seed=lambda ws: ws.sub("qms/device.yaml", r"^use_cases: \[aaa-cta, abdomen-pv\]",
                                    "use_cases: [aaa-cta, abdomen-pv, liver-arterial]")),
    Mutation("platform-component-unassessed", "a platform component the device runs on "
             "without its SOUP assessment", r"platform component cpython \S+ \(.*\) has no "
             "SOUP assessment under platform:",
             seed=lambda ws: ws.sub(SOUP, r"^  - name: cpython$", "  - name: cpythn")),
    Mutation("platform-entry-of-nothing", "a platform entry naming no component of the "
             "platform", r"platform entry cpythn is not a platform component of the device",
             seed=lambda ws: ws.sub(SOUP, r"^  - name: cpython$", "  - name: cpythn")),
    Mutation("platform-series-drift", "the interpreter assessed in another release series "
             "than the one measured", r"platform component cpython is 3\.10\.13 in the SOUP "
             r"list but \S+ was measured .*another release series",
             seed=lambda ws: ws.sub(SOUP, r'(  - name: cpython\n(?:    .*\n)*?    version: )"'
                                    r'3\.11\.\d+"', r'\1"3.10.13"')),
    Mutation("soup-review-missing", "a SOUP item's anomaly review record deleted",
             r"typer: no anomaly review record \(qms/soup/reviews/typer\.yaml\)",
             seed=lambda ws: ws.remove(_review("typer"))),
    Mutation("soup-review-old", "an anomaly review more than a year old",
             r"rich: anomaly review of 2025-11-29 is \d+ days old",
             seed=lambda ws: ws.sub(_review("rich"), r"^date: 2026-11-29$", "date: 2025-11-29")),
    Mutation("soup-review-future", "an anomaly review dated in the future",
             r"rich: anomaly review dated 2099-01-01, in the future",
             seed=lambda ws: ws.sub(_review("rich"), r"^date: 2026-11-29$", "date: 2099-01-01")),
    Mutation("soup-review-other-version", "an anomaly review of another version than the one in "
             "use", r"uvloop: the anomaly review is for version 0\.22\.1",
             seed=lambda ws: ws.sub(_review("uvloop"), r"^version: 0\.23\.0$",
                                    "version: 0.22.1")),
    Mutation("soup-review-skips-its-source", "an item's anomaly source neither consulted nor "
             "listed as not consulted by its review", r"rich: the anomaly source \S+ is neither "
             "consulted nor listed as not consulted",
             seed=lambda ws: ws.sub(SOUP, r"anomaly_source: https://github\.com/Textualize/rich/"
                                    "issues", "anomaly_source: https://github.com/Textualize/"
                                    "rich/discussions")),
    Mutation("soup-review-orphan", "an anomaly review of something that is not a SOUP item",
             r"anomaly review of left-pad, which is not a SOUP item", seed=_review_of_no_item),
    Mutation("soup-review-misnamed", "an anomaly review record filed under another name",
             r"review record of numpy must be named numpy\.yaml", seed=_review_misnamed),
    Mutation("soup-review-claims-complete", "an anomaly review called complete while it lists "
             "sources it did not consult", r"a review with sources not consulted is incomplete",
             seed=lambda ws: ws.sub(_review("numpy"), r"^result: incomplete$",
                                    "result: complete")),
    Mutation("soup-support-lapsed", "a component recorded as supported past its end of "
             "support", r"cpython: support recorded as supported until 2026-10-31, which has "
             "passed", seed=lambda ws: ws.sub(SOUP, r"until: 2027-10-31", "until: 2026-10-31")),
    Mutation("soup-support-without-end", "a component recorded as supported with no end date",
             r"status supported needs .until.",
             seed=lambda ws: ws.sub(SOUP, r"^      until: 2027-10-31\n", "")),
    Mutation("soup-version-drift", "a SOUP item upgraded in the environment but not in its "
             "assessment", r"numpy is [\d.]+ in the SOUP list but 0\.0\.1 is installed",
             closure=_soup_upgraded_behind_its_back),
    Mutation("use-case-protocol-of-another", "a use case's protocol file says it is for another "
             "use case", r"aaa-cta\.yaml\) is for use case abdomen-pv",
             seed=lambda ws: ws.sub("validation/protocols/aaa-cta.yaml", r"^use_case: aaa-cta$",
                                    "use_case: abdomen-pv")),
    Mutation("use-case-without-risk-review", "a use case whose risk review was deleted",
             r"use case abdomen-pv has no risk review", seed=lambda ws: ws.remove(PV_REVIEW)),
    Mutation("use-case-review-unknown-risk", "a use case's risk review naming a risk the risk "
             "file does not hold", r"risk review of abdomen-pv: unknown risk RISK-099",
             seed=lambda ws: ws.sub(PV_REVIEW, r"RISK-022\]", "RISK-099]")),
    Mutation("use-case-without-ifu-section", "a use case without its section of the "
             "instructions for use", r"use case abdomen-pv has no section in the instructions",
             seed=lambda ws: ws.sub(IFU, r"^## abdomen-pv:", "## Abdomen, portal-venous:")),
    Mutation("use-case-ifu-without-notice", "instructions for use that no longer state the use "
             "case's notice", r"instructions for use of abdomen-pv do not state its notice",
             seed=lambda ws: ws.sub(IFU, r"NOT FOR LESION DETECTION", "NOT FOR LESION FINDING")),
]

"""`digital-contrast qms ...`: the technical file's gap check and generated documents."""

from pathlib import Path
from typing import Annotated

import typer

from digital_contrast.cli.output import console, err_console, user_errors
from digital_contrast.errors import DigitalContrastError

NAME = "qms"
app = typer.Typer(no_args_is_help=True, help="Quality records: gap check, traceability, "
                  "detailed design, SOUP list, risk management report.")

JunitOption = Annotated[Path | None, typer.Option(
    "--junit", help="junit report of the test run (default: var/test-reports/junit.xml)")]
OutOption = Annotated[Path, typer.Option("--out", help="Folder for the generated documents.")]


def _test_run(junit: Path | None):  # -> TestRun
    from digital_contrast.qms.junit_report import DEFAULT_JUNIT, JunitError, read_junit

    try:
        return read_junit(junit or DEFAULT_JUNIT)
    except JunitError as exc:
        raise DigitalContrastError("QMS_NO_TEST_RUN", str(exc)) from None


@app.command("check")
@user_errors
def qms_check(junit: JunitOption = None) -> None:
    """Every gap in the technical file, with file and line; exit 1 when there is any."""
    from digital_contrast.cli import command_names
    from digital_contrast.qms.check import run_checks

    result = run_checks(_test_run(junit), commands=command_names())
    console.print(", ".join(f"{n} {what}" for what, n in result.counts.items()))
    for clause in result.outside:
        assert clause.outside_repository is not None
        console.print(f"clause {clause.clause} ({clause.title}) is satisfied outside this "
                      f"repository by {clause.outside_repository.holder}; status: "
                      f"{clause.outside_repository.status}", highlight=False, soft_wrap=True)
    for problem in result.problems:
        console.print(str(problem), highlight=False, soft_wrap=True)
    if result.problems:
        err_console.print(f"[bold red]QMS_GAPS[/]: {len(result.problems)} problem(s)")
        raise typer.Exit(1)
    console.print("qms check: no gaps")


def _controls_by_requirement() -> dict[str, list[str]]:
    from digital_contrast.qms.risk import load_risk_file

    risk_file, _ = load_risk_file()
    controls: dict[str, list[str]] = {}
    for control in (risk_file.controls.values() if risk_file else []):
        for rid in control.implemented_by:
            controls.setdefault(rid, []).append(control.id)
    return controls


@app.command("trace")
@user_errors
def qms_trace(junit: JunitOption = None, out: OutOption = Path("build/qms")) -> None:
    """Traceability matrix (need -> requirement -> item -> test -> result -> risk control) as
    HTML, PDF, Markdown, CSV and trace.json."""
    from digital_contrast.qms.records import QMS_DIR
    from digital_contrast.qms.requirements import load_records
    from digital_contrast.qms.trace import write_trace

    records, problems = load_records(QMS_DIR)
    if problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    for path in write_trace(out, records, _test_run(junit), _controls_by_requirement()):
        console.print(f"wrote {path}")


@app.command("design")
@user_errors
def qms_design(out: OutOption = Path("build/qms")) -> None:
    """Software detailed design (items, units, public API, imports) with its verification
    against qms/software_items.yaml, as HTML, PDF, Markdown and design.json."""
    from digital_contrast.qms.design import check_design, read_detailed_design, write_design
    from digital_contrast.qms.records import QMS_DIR
    from digital_contrast.qms.requirements import load_records

    records, problems = load_records(QMS_DIR)
    if problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    design = read_detailed_design(records)
    found = check_design(design, records)
    for path in write_design(out, design, found):
        console.print(f"wrote {path}")
    console.print(f"design problems: {len(found)} (listed in the document and by qms check)")


@app.command("diagram")
@user_errors
def qms_diagram() -> None:
    """Rewrite the dependency diagram of docs/architecture.md from qms/software_items.yaml."""
    from digital_contrast.qms.architecture import ARCHITECTURE, write_diagram
    from digital_contrast.qms.records import QMS_DIR
    from digital_contrast.qms.requirements import load_records

    records, problems = load_records(QMS_DIR)
    if problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    changed = write_diagram(records)
    console.print(f"{ARCHITECTURE}: diagram {'updated' if changed else 'already current'}")


@app.command("risk")
@user_errors
def qms_risk(junit: JunitOption = None, out: OutOption = Path("build/qms")) -> None:
    """Risk management report (risk table with initial and residual levels, control
    verification from the latest test run, overall residual risk) as HTML, PDF and Markdown."""
    from digital_contrast.qms.anomalies import accepted_tests, load_anomalies
    from digital_contrast.qms.risk import load_risk_file, write_risk_report

    risk_file, problems = load_risk_file()
    if risk_file is None or problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    run = _test_run(junit)
    anomalies, _, _ = load_anomalies()  # schema problems are reported by qms check
    for path in write_risk_report(out, risk_file, run.outcomes, run.requirement_tests(),
                                  accepted=frozenset(accepted_tests(anomalies, run))):
        console.print(f"wrote {path}")


@app.command("soup")
@user_errors
def qms_soup(out: OutOption = Path("build/qms"),
             audit: Annotated[bool, typer.Option(help="Run the pip-audit vulnerability audit "
                                                 "(its record says when the service is "
                                                 "unreachable)")] = True) -> None:
    """SOUP list (HTML, PDF, Markdown, CSV) from installed metadata joined with qms/soup.yaml, the
    CycloneDX SBOM of the runtime closure and the vulnerability audit record."""
    import json

    from digital_contrast.qms.soup import (
        audit_vulnerabilities,
        runtime_closure,
        write_sbom,
        write_soup_list,
    )

    closure = runtime_closure()
    paths = write_soup_list(out, closure=closure)
    paths.append(write_sbom(out / "sbom.cdx.json", closure))
    if audit:
        record = audit_vulnerabilities(closure)
        paths.append(out / "vulnerability_audit.json")
        paths[-1].write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        console.print(f"vulnerability audit: {record['status']}"
                      f"{' - ' + record['reason'] if record.get('reason') else ''}")
    for path in paths:
        console.print(f"wrote {path}")

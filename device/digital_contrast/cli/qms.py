"""`digital-contrast qms ...`: the technical file's gap check and generated documents."""

from pathlib import Path
from typing import Annotated

import typer

from digital_contrast.cli.command_names import command_names
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
def qms_check(ctx: typer.Context, junit: JunitOption = None) -> None:
    """Every gap in the technical file, with file and line; exit 1 when there is any. Release
    blockers (residual risks computed unacceptable or unjustified) are listed apart: they do
    not fail the check, and every release record states them."""
    from digital_contrast.qms.check import run_checks

    result = run_checks(_test_run(junit), commands=command_names(ctx.find_root().command))
    console.print(", ".join(f"{n} {what}" for what, n in result.counts.items()))
    for clause in result.outside:
        assert clause.outside_repository is not None
        console.print(f"clause {clause.clause} ({clause.title}) is satisfied outside this "
                      f"repository by {clause.outside_repository.holder}; status: "
                      f"{clause.outside_repository.status}", highlight=False, soft_wrap=True)
    if result.blockers:
        console.print(f"release blockers ({len(result.blockers)}): the overall residual risk is "
                      "NOT acceptable; a release record states it (research use, no clinical "
                      "claim)", highlight=False, soft_wrap=True)
        for blocker in result.blockers:
            console.print(f"  blocker: {blocker}", highlight=False, soft_wrap=True)
    for problem in result.problems:
        console.print(str(problem), highlight=False, soft_wrap=True)
    if result.problems:
        err_console.print(f"[bold red]QMS_GAPS[/]: {len(result.problems)} problem(s)")
        raise typer.Exit(1)
    console.print("qms check: no gaps")


@app.command("trace")
@user_errors
def qms_trace(junit: JunitOption = None, out: OutOption = Path("build/qms")) -> None:
    """Traceability matrix (need -> requirement -> item -> test -> result -> risk control) as
    HTML, PDF, Markdown, CSV and trace.json."""
    from digital_contrast.qms.generate import trace_documents, valid_records
    from digital_contrast.qms.risk import load_risk_file

    risk_file, _ = load_risk_file()  # its problems are qms check's; controls as far as read
    for path in trace_documents(out, valid_records(), _test_run(junit), risk_file):
        console.print(f"wrote {path}")


@app.command("design")
@user_errors
def qms_design(out: OutOption = Path("build/qms")) -> None:
    """Software detailed design (items, units, public API, imports) with its verification
    against qms/software_items.yaml, as HTML, PDF, Markdown and design.json."""
    from digital_contrast.qms.generate import design_documents, valid_records

    paths, found = design_documents(out, valid_records())
    for path in paths:
        console.print(f"wrote {path}")
    console.print(f"design problems: {len(found)} (listed in the document and by qms check)")


@app.command("diagram")
@user_errors
def qms_diagram() -> None:
    """Rewrite the dependency diagram of docs/architecture.md from qms/software_items.yaml."""
    from digital_contrast.qms.architecture import ARCHITECTURE, write_diagram
    from digital_contrast.qms.generate import valid_records

    changed = write_diagram(valid_records())
    console.print(f"{ARCHITECTURE}: diagram {'updated' if changed else 'already current'}")


@app.command("risk")
@user_errors
def qms_risk(junit: JunitOption = None, out: OutOption = Path("build/qms")) -> None:
    """Risk management report (risk table with initial and residual levels, control
    verification from the latest test run, overall residual risk) as HTML, PDF and Markdown."""
    from digital_contrast.qms.anomalies import load_anomalies
    from digital_contrast.qms.generate import risk_documents
    from digital_contrast.qms.risk import load_risk_file

    risk_file, problems = load_risk_file()
    if risk_file is None or problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    anomalies, _, _ = load_anomalies()  # schema problems are reported by qms check
    for path in risk_documents(out, risk_file, _test_run(junit), anomalies):
        console.print(f"wrote {path}")


@app.command("conformance")
@user_errors
def qms_conformance(out: OutOption = Path("build/qms")) -> None:
    """DICOM Conformance Statement (Markdown) from the listener's presentation contexts, the
    SCU's SOP classes and transfer syntaxes, the DICOMweb routes and the intake's statuses."""
    from fastapi.routing import APIRoute

    from digital_contrast import __version__
    from digital_contrast.api.routers import dicomweb
    from digital_contrast.config import Settings
    from digital_contrast.delivery.c_store import (
        DEFAULT_SYNTAXES,
        RESULT_SOP_CLASSES,
        SENDABLE_SYNTAXES,
    )
    from digital_contrast.dimse import supported_contexts
    from digital_contrast.intake.statuses import MEANINGS
    from digital_contrast.qms.conformance import ConformanceFacts, conformance_statement

    defaults = Settings.model_fields
    facts = ConformanceFacts(
        version=__version__, default_ae_title=defaults["dimse_ae_title"].default,
        scp_contexts=supported_contexts(), scu_sop_classes=RESULT_SOP_CLASSES,
        scu_default_syntaxes=DEFAULT_SYNTAXES, scu_sendable_syntaxes=SENDABLE_SYNTAXES,
        max_associations=defaults["dimse_max_associations"].default,
        timeout_s=defaults["dimse_timeout_s"].default,
        statuses=[(int(r), r.name, m) for r, m in sorted(MEANINGS.items())],
        dicomweb=[(method, route.path, route.summary or "") for route in dicomweb.router.routes
                  if isinstance(route, APIRoute) for method in sorted(route.methods)])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dicom-conformance-statement.md"
    path.write_text(conformance_statement(facts), encoding="utf-8")
    console.print(f"wrote {path}")


@app.command("soup")
@user_errors
def qms_soup(out: OutOption = Path("build/qms"),
             audit: Annotated[bool, typer.Option(help="Run the pip-audit vulnerability audit "
                                                 "(its record says when the service is "
                                                 "unreachable)")] = True) -> None:
    """SOUP list (HTML, PDF, Markdown, CSV) from installed metadata joined with qms/soup.yaml, the
    CycloneDX SBOM of the runtime closure and the vulnerability audit record."""
    from digital_contrast.qms.generate import soup_documents
    from digital_contrast.qms.soup import runtime_closure

    paths, record = soup_documents(out, runtime_closure(), audit=audit)
    if record is not None:
        console.print(f"vulnerability audit: {record['status']}"
                      f"{' - ' + str(record['reason']) if record.get('reason') else ''}")
    for path in paths:
        console.print(f"wrote {path}")


@app.command("verify-record")
@user_errors
def qms_verify_record(
        requirement: Annotated[str, typer.Argument(help="The requirement verified, SRS-...")],
        method: Annotated[str, typer.Option(help="inspection, analysis or demonstration; "
                                            "must be the requirement's verification")],
        by: Annotated[str, typer.Option("--by", help="Who performed it: role and name")],
        procedure: Annotated[str, typer.Option(help="What was done, step by step")],
        examined: Annotated[list[Path], typer.Option(
            "--examined", help="A file examined (repeat); its SHA-256 is recorded")],
        result: Annotated[str, typer.Option(help="pass or fail")],
        findings: Annotated[str, typer.Option(help="What was found")]) -> None:
    """Sign the record of a verification that is not a test, with the keys folder's current
    signing key (its public half must be committed under releases/keys/)."""
    from pydantic import ValidationError

    from digital_contrast.config import REPO_ROOT
    from digital_contrast.keys import keys_folder
    from digital_contrast.keys.signing import current_signer
    from digital_contrast.qms.generate import valid_records
    from digital_contrast.qms.verification_records import write_record

    known = valid_records().requirements.get(requirement)
    if known is None or known.verification != method:
        raise DigitalContrastError("QMS_RECORD_INVALID", f"{requirement} is not a requirement "
                                   f"verified by {method} in qms/requirements/")
    try:
        path = write_record(REPO_ROOT, current_signer(keys_folder()), requirement=requirement,
                            method=method, performed_by=by, procedure=procedure,
                            examined=examined, result=result, findings=findings)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DigitalContrastError("QMS_RECORD_INVALID", f"{'.'.join(map(str, first['loc']))}: "
                                   f"{first['msg']}") from None
    except ValueError as exc:
        raise DigitalContrastError("QMS_RECORD_INVALID", str(exc)) from None
    console.print(f"wrote {path.relative_to(REPO_ROOT)}")


@app.command("mutate")
@user_errors
def qms_mutate(ctx: typer.Context, junit: JunitOption = None) -> None:
    """Seed every fault of the catalogue into a copy of the tree, run the whole check on each,
    and exit 1 unless every one is caught for its own reason."""
    from rich.table import Table

    from digital_contrast.config import REPO_ROOT
    from digital_contrast.qms.mutate import MutationError, Outcome, checker, run_mutations
    from digital_contrast.qms.mutations import MUTATIONS
    from digital_contrast.qms.soup import runtime_closure

    def report(outcome: Outcome) -> None:
        mark = "[green]caught[/]" if outcome.caught else "[bold red]NOT CAUGHT[/]"
        console.print(f"{mark} {outcome.mutation.id}", highlight=False)

    commands = command_names(ctx.find_root().command)
    try:
        outcomes = run_mutations(REPO_ROOT, _test_run(junit), MUTATIONS, checker(commands),
                                 runtime_closure(), progress=report)
    except MutationError as exc:
        raise DigitalContrastError("QMS_MUTATE_UNUSABLE", str(exc)) from None
    table = Table("mutation", "seeded fault", "caught by", show_lines=False)
    for outcome in outcomes:
        table.add_row(outcome.mutation.id, outcome.mutation.fault,
                      outcome.caught_by or "[bold red]nothing[/]")
    console.print(table)
    missed = [o.mutation.id for o in outcomes if not o.caught]
    console.print(f"qms mutate: {len(outcomes) - len(missed)} of {len(outcomes)} seeded faults "
                  "caught")
    if missed:
        err_console.print(f"[bold red]QMS_MUTANTS_SURVIVED[/]: {', '.join(missed)}")
        raise typer.Exit(1)

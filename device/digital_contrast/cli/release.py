"""`digital-contrast release ...`: reference model releases, filed candidates, release records."""

from pathlib import Path
from typing import Annotated

import typer

from digital_contrast.cli.command_names import command_names
from digital_contrast.cli.output import console, user_errors

NAME = "release"
app = typer.Typer(no_args_is_help=True, help="Release records under releases/.")
BundleArgument = Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")]
ReportOption = Annotated[Path | None, typer.Option(
    help="The quality report it was judged on (bench/model_quality.py --report).")]


@app.command("model")
@user_errors
def release_model_command(
    bundle: BundleArgument,
    record: Annotated[Path, typer.Option(help="Its passing validation record (JSON).")],
    report: ReportOption = None,
) -> None:
    """Release a validated bundle as a reference model: bundle, record, report, model card."""
    from digital_contrast.release.model_release import release_model

    released = release_model(bundle, record, report)
    console.print(f"released {released.bundle.manifest.model_name} "
                  f"{released.bundle.manifest.model_version} (bundle "
                  f"{released.bundle.sha256[:16]}) in {released.folder}")


@app.command("candidate")
@user_errors
def release_candidate_command(
    bundle: BundleArgument,
    record: Annotated[Path, typer.Option(help="Its validation record (JSON), passed or not.")],
    report: ReportOption = None,
) -> None:
    """File an evaluated candidate's evidence under validation/reports/ (not a release: it is
    never registered or promoted)."""
    from digital_contrast.release.model_release import file_candidate

    filed = file_candidate(bundle, record, report)
    console.print(f"filed candidate {filed.bundle.manifest.model_name} "
                  f"{filed.bundle.manifest.model_version} (bundle {filed.bundle.sha256[:16]}, "
                  f"validation {'passed' if filed.record.passed else 'FAILED'}) in "
                  f"{filed.folder}")


@app.command("build")
@user_errors
def release_build_command(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The release version (PEP 440, normal form).")],
    junit: Annotated[Path | None, typer.Option(
        "--junit", help="junit report of the test run (default: var/test-reports/junit.xml)")
    ] = None,
    audit: Annotated[bool, typer.Option(help="Include the pip-audit vulnerability audit "
                                        "(needs the network).")] = False,
) -> None:
    """Write the release record releases/VERSION/ (IEC 62304 5.8): manifest with hashes, wheel,
    notes, trace, risk, SOUP, design, test report, anomalies, validation records. Refused on a
    dirty tree, an existing version or any `qms check` gap."""
    from digital_contrast.qms.junit_report import DEFAULT_JUNIT
    from digital_contrast.release.record import build_release

    folder = build_release(version, commands=command_names(ctx.find_root().command),
                           junit=junit or DEFAULT_JUNIT, audit=audit)
    console.print(f"released {version} in {folder}")

"""`digital-contrast validate`: a validation protocol run through the clinical path."""

from pathlib import Path
from typing import Annotated

import typer

from digital_contrast.cli.output import console, user_errors
from digital_contrast.cli.state import audit
from digital_contrast.config import get_settings


@user_errors
def validate_command(
    protocol: Annotated[Path, typer.Option(help="Protocol: validation/protocols/<name>.yaml.")],
    bundle: Annotated[Path | None, typer.Option(
        help="Validate this bundle folder (weights.pt, bundle.json) instead of a registered "
             "version.")] = None,
    version: Annotated[str | None, typer.Option(
        help="Validate this registered version of the use case's model (default: the "
             "production model).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the run (default: <DC_BUILD_DIR>/validation).")] = None,
    explain_from: Annotated[Path | None, typer.Option(
        help="A record or calibration file of the same bundle (`model calibrate --out`) whose "
             "uncertainty calibration and attribution checks go into the new record (default: "
             "the version's earlier signed record).")] = None,
    attach: Annotated[bool, typer.Option(
        "--attach", help="Attach the record to the model's registry version (registering a "
        "--bundle first), so that a passing one lets `model promote` give it production.")
    ] = False,
) -> None:
    """Run a validation protocol through the clinical DICOM path and write the validation
    record (signed with the keys folder's current signing key), report (HTML and PDF) and
    per-case table. Exit 1 when the protocol is not met."""
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.keys.signing import current_signer
    from digital_contrast.model.explain_evidence import ExplainFile
    from digital_contrast.usecases import load_use_case
    from digital_contrast.validation import load_protocol, run_validation
    from digital_contrast.validation.candidate import load_candidate
    from digital_contrast.validation.protocol_run import RECORD

    if bundle is not None and version is not None:
        raise typer.BadParameter("give --bundle or --version, not both")
    signer = current_signer(keys_folder())  # SIGNING_KEY_MISSING before hours of cases
    fixed = load_protocol(protocol)  # hashed once, before anything runs
    candidate = load_candidate(load_use_case(fixed.protocol.use_case), bundle=bundle,
                               version=version, register=attach,
                               explain_from=ExplainFile.read(explain_from) if explain_from
                               else None)
    run = run_validation(fixed, candidate.model, out or get_settings().build_dir / "validation",
                         signer, progress=lambda line: console.print(line, highlight=False))
    record = run.record
    console.print(f"[bold]{record.evidence}[/]")
    def shown(value: float | None) -> str:
        return "not measurable" if value is None else f"{value:g}"

    for criterion in record.criteria:
        oracle = run.floor_of(criterion)
        console.print(f"  {criterion.describe():<62} {shown(criterion.value):>10} "
                      f"{'pass' if criterion.passed else 'FAIL'}"
                      + (f"   floor {shown(oracle.value)}" if oracle else ""), highlight=False)
    if run.floor_failures:
        console.print(f"[bold red]The floor (oracle) fails {len(run.floor_failures)} criteria: "
                      "no model can meet them; the protocol must be reviewed.[/]")
    registered, registry = candidate.registered, candidate.registry
    if attach and registered is not None and registry is not None:
        registered = registry.attach_validation(registered, (run.folder / RECORD).read_bytes())
        audit("model.validate", "model", f"{registered.name}/{registered.version}",
              {"bundle_sha256": registered.sha256, "passed": record.passed,
               "protocol_sha256": record.protocol_sha256, "run": run.run_id})
        console.print(f"record attached to {registered.name} version {registered.version}")
    console.print(f"record signed with key {signer.key_id}")
    console.print(f"validation {'PASSED' if record.passed else 'FAILED'}: {run.folder}",
                  highlight=False, soft_wrap=True)
    if not record.passed:
        raise typer.Exit(1)

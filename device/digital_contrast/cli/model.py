"""`digital-contrast model ...`: train, calibrate, list, show, register and promote bundles."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from digital_contrast.cli.output import console, user_errors
from digital_contrast.cli.state import audit
from digital_contrast.config import get_settings

NAME = "model"
app = typer.Typer(no_args_is_help=True, help="Model bundles in the registry.")
BundleArgument = Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")]


@app.command("train")
@user_errors
def model_train(
    use_case: Annotated[str, typer.Option("--use-case", help="Use case id.")] = "aaa-cta",
    preset: Annotated[str, typer.Option("--config", help="A preset of the use case's training "
                                        "config (training/<use case>/training.yaml), e.g. "
                                        "reference, smoke or abdomen-pv's veins")
                  ] = "reference",
    model_version: Annotated[str, typer.Option(help="Version written into the bundle.")
                             ] = "0.1.0",
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the preset.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Training folder; the same command again resumes an interrupted training there "
             "[default: DATA_DIR/training/<run id>].")] = None,
    cohort: Annotated[Path | None, typer.Option(
        help="Train the first stage on a repository cohort of native + contrast pairs: the "
             "batch manifest `repository export` wrote (with --files).", exists=True,
        dir_okay=False)] = None,
) -> None:
    """Train the stages the use case's training config names (the first as one MLflow run) and
    write their bundle. Each stage resumes from its checkpoint when run again with --out.
    With --cohort, the first stage alone learns from the cohort's pairs, each checked against
    the manifest's hashes before the run starts."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from digital_contrast.batch_manifest import read_manifest
    from digital_contrast.model.cohort_data import CohortDataError
    from digital_contrast.model.lumen_training import measured_energy_kwh, train_measured
    from digital_contrast.model.training import train
    from digital_contrast.model.training_plan import cohort_plan, training_plan
    from digital_contrast.model.use_case_training import LumenStageRun, write_trained_bundle
    from digital_contrast.usecases import load_use_case

    case = load_use_case(use_case)
    plan = training_plan(case, preset, epochs)
    manifest = read_manifest(cohort) if cohort is not None else None
    if manifest is not None:
        plan = cohort_plan(plan, manifest)
    elif plan.cohort_only:
        raise CohortDataError("TRAINING_COHORT_INVALID", f"preset {preset} trains on a "
                                                         "cohort: give --cohort MANIFEST")
    config = plan.first_stage
    settings = get_settings()
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=config.epochs * config.steps_per_epoch,
                                 epoch=0, loss=float("nan"))
        result = train(config, progress=lambda epoch, step, loss: progress.update(
            task, advance=1, epoch=epoch + 1, loss=loss), output_dir=out,
            country_iso_code=settings.carbon_country.upper(), cohort=manifest)
    lumen = None
    if plan.second_stage is not None:
        folder = (out or settings.data_dir / "training" / result.run_id) / "lumen-stage"
        train_measured(plan.second_stage, folder, settings.data_dir / "cache" / "lumen-crops",
                       log=lambda line: console.print(line, highlight=False),
                       country_iso_code=settings.carbon_country.upper())
        lumen = LumenStageRun(folder, measured_energy_kwh(folder))
    bundle = write_trained_bundle(result, lumen, case, model_version,
                                  settings.data_dir / "bundles")
    console.print(f"MLflow run {result.run_id}; energy {result.energy.energy_kwh:.4f} kWh "
                  f"({result.energy.method}); last epoch {result.metrics}")
    console.print(f"Bundle {bundle.folder} (sha256 {bundle.sha256}). It is not validated: run "
                  "the validation protocol, then `model register BUNDLE --record RECORD`.")


@app.command("assemble")
@user_errors
def model_assemble(
    first_stage: Annotated[Path, typer.Option(help="A bundle folder whose first stage "
                                              "(bundle.json network, weights.pt) is reused; "
                                              "any bundle format.")],
    lumen_run: Annotated[Path, typer.Option(help="A finished second-stage training folder "
                                            "(python -m digital_contrast.model."
                                            "lumen_training).")],
    model_version: Annotated[str, typer.Option(help="Version written into the bundle.")],
    out: Annotated[Path, typer.Option(help="The bundle folder to write.")],
    use_case: Annotated[str, typer.Option("--use-case", help="Use case id.")] = "aaa-cta",
) -> None:
    """Assemble a cascade bundle from an earlier bundle's first stage and a retrained second
    stage. The bundle is not validated."""
    from digital_contrast.model.lumen_training import measured_energy_kwh
    from digital_contrast.model.use_case_training import LumenStageRun, assemble_bundle
    from digital_contrast.usecases import load_use_case

    bundle = assemble_bundle(first_stage, LumenStageRun(lumen_run, measured_energy_kwh(lumen_run)),
                             load_use_case(use_case), model_version, out)
    console.print(f"Bundle {bundle.folder} (sha256 {bundle.sha256}). It is not validated: run "
                  "`model calibrate`, then the validation protocol.")


@app.command("calibrate")
@user_errors
def model_calibrate(
    bundle: BundleArgument,
    out: Annotated[Path, typer.Option(help="The calibration file to write, for `validate "
                                      "--explain-from`.")],
) -> None:
    """Calibrate the uncertainty threshold and run the attribution sanity checks on held-out
    phantom cases of the bundle's use case (its phantom extension, where it has one); `validate
    --explain-from` carries the evidence into the signed record."""
    from digital_contrast.explain.evidence import calibrate_bundle
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.phantom.extensions import extensions
    from digital_contrast.usecases import load_use_case

    case = load_use_case(read_bundle(bundle).manifest.use_case)
    evidence = calibrate_bundle(bundle, out,
                                progress=lambda line: console.print(line, highlight=False),
                                target_phase=case.target_phase.value,
                                error_hu=case.explain.calibration_error_hu,
                                extension=case.id if case.id in extensions() else None)
    u = evidence.uncertainty
    console.print(f"Uncertainty threshold {u.threshold_hu} HU (voxel AUC {u.voxel_auc}, "
                  f"Spearman across cases {u.spearman_cases}); written to {out}.")
    for check in evidence.sanity:
        console.print(f"{check.method}: randomisation Spearman {check.randomisation_spearman} "
                      f"(<= {check.max_randomisation_spearman}), aorta mass ratio "
                      f"{check.aorta_mass_ratio} (>= {check.min_aorta_mass_ratio}): "
                      f"{'offered' if check.passed else 'REFUSED'}", highlight=False)


@app.command("list")
@user_errors
def model_list() -> None:
    """Registered models and their versions."""
    from digital_contrast.model.registry import ModelRegistry

    registry = ModelRegistry()
    table = Table(title=f"Models in {registry.uri}")
    for column in ("name", "version", "model version", "bundle sha256", "aliases", "validated"):
        table.add_column(column)
    for name in registry.names():
        for v in registry.versions(name):
            table.add_row(v.name, v.version, v.model_version, v.sha256[:16],
                          ", ".join(v.aliases), "yes" if v.validation_passed else "no")
    console.print(table)


@app.command("show")
@user_errors
def model_show(name: str, version: str) -> None:
    """One version: bundle identity and its validation record."""
    from digital_contrast.model.registry import ModelRegistry

    registry = ModelRegistry()
    registered = registry.show(name, version)
    console.print(registered)
    signed = registry.validation_record(registered)
    if signed is None:
        console.print("No validation record.")
        return
    console.print(signed.record.model_dump_json(indent=2))
    console.print(f"signed by trusted key {signed.key_id}")


@app.command("register")
@user_errors
def model_register(
    bundle: BundleArgument,
    record: Annotated[Path | None, typer.Option(
        help="Its validation record, as `validate` signed it.")] = None,
) -> None:
    """Register a bundle (idempotent) and attach its signed validation record."""
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.model.registry import ModelRegistry

    registry = ModelRegistry()
    registered = registry.register(read_bundle(bundle))
    if record is not None:
        registered = registry.attach_validation(registered, record.read_bytes())
    audit("model.register", "model", f"{registered.name}/{registered.version}",
          {"bundle_sha256": registered.sha256, "validated": registered.validation_passed})
    console.print(f"{registered.name} version {registered.version} "
                  f"(sha256 {registered.sha256}); validated: {registered.validation_passed}")


@app.command("promote")
@user_errors
def model_promote(name: str, version: str,
                  alias: Annotated[str, typer.Option(help="production | candidate")
                                   ] = "production") -> None:
    """Give a version an alias; production needs a passing validation record."""
    from digital_contrast.model.registry import ModelRegistry

    promoted = ModelRegistry().promote(name, version, alias)
    audit("model.promote", "model", f"{name}/{version}", {"alias": alias,
                                                         "bundle_sha256": promoted.sha256})
    console.print(f"{promoted.name} version {promoted.version}: aliases {list(promoted.aliases)}")

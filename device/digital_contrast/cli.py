"""`digital-contrast <group> <verb>`: the one command-line program (the only module that may
import every item)."""

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from digital_contrast import __version__
from digital_contrast.config import get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.phantom import OutputFormat, PhantomSize

if TYPE_CHECKING:
    from digital_contrast.explain.attribution import Attribution
    from digital_contrast.explain.outputs import MapOutputs
    from digital_contrast.explain.pipeline import Confidence
    from digital_contrast.imaging.volume import Volume
    from digital_contrast.inference import SynthesisResult

T = TypeVar("T")
Box = tuple[tuple[float, float, float], tuple[float, float, float]]
console = Console()
err_console = Console(stderr=True)

app = typer.Typer(name="digital-contrast", no_args_is_help=True, add_completion=False,
                  help="Digital Contrast: synthetic contrast-enhanced CT from non-contrast CT. "
                       "The reference model is trained on a procedural phantom and is not "
                       "clinically validated.")
phantom_app = typer.Typer(no_args_is_help=True, help="Procedural abdominal CT phantom.")
app.add_typer(phantom_app, name="phantom")
model_app = typer.Typer(no_args_is_help=True, help="Model bundles in the registry.")
app.add_typer(model_app, name="model")
release_app = typer.Typer(no_args_is_help=True, help="Release records under releases/.")
app.add_typer(release_app, name="release")
keys_app = typer.Typer(no_args_is_help=True, help="API keys of the service.")
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
app.add_typer(audit_app, name="audit")
qms_app = typer.Typer(no_args_is_help=True, help="Quality records: gap check, traceability, "
                      "detailed design, SOUP list, risk management report.")
app.add_typer(qms_app, name="qms")


def _fail(code: str, detail: str) -> typer.Exit:
    err_console.print(f"[bold red]{code}[/]: {detail}", highlight=False)
    return typer.Exit(2)


def user_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Report a user error as `CODE: message` with exit status 2, never as a traceback."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            return func(*args, **kwargs)
        except DigitalContrastError as exc:
            verdict = getattr(exc, "verdict", None)
            for check in verdict.failures if verdict is not None else []:
                err_console.print(f"  {check.code}: {check.message} (measured {check.measured})",
                                  highlight=False)
            raise _fail(exc.code, exc.detail) from None

    return wrapper


@app.callback()
def _check_settings() -> None:
    """Refuse to start on invalid DC_* settings, naming the variable."""
    try:
        get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"DC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in exc.errors())
        raise _fail("CONFIG_INVALID", problems) from None


@app.command()
def version() -> None:
    """Print the software version and the site this installation is configured for."""
    console.print(f"digital-contrast {__version__} (site: {get_settings().site})")


@phantom_app.command("generate")
@user_errors
def phantom_generate(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of cases.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Output folder [default: DATA_DIR/phantom].")
                   ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first case.")] = 0,
    size: Annotated[PhantomSize, typer.Option(help="Field of view and matrix.")
                    ] = PhantomSize.SMALL,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="File format.")
                   ] = OutputFormat.DICOM,
) -> None:
    """Generate phantom cases: NCCT, arterial and portal-venous series, labels, manifest."""
    from digital_contrast.imaging.phantom.export import generate_study

    out = out or get_settings().data_dir / "phantom"
    with console.status("Generating phantom cases...") as status:
        manifest = generate_study(n, out, seed=seed, size=size, fmt=fmt,
                                  progress=lambda i, cid: status.update(f"{cid} ({i}/{n})"))
    table = Table(title=f"Phantom study in {out}", caption=manifest["notice"])
    for column in ("case", "slices x rows x cols", "voxel (mm)", "AAA (mm)", "thrombus",
                   "thrombus-blood (HU)", "noise SD (HU)"):
        table.add_column(column, overflow="fold")
    for case in manifest["cases"]:
        p = case["parameters"]
        table.add_row(case["case_id"], " x ".join(map(str, case["shape"])),
                      " x ".join(f"{s:.2f}" for s in case["spacing_mm"]),
                      f"{p['aneurysm_max_diameter_mm']:.0f}", *_thrombus_cells(p),
                      f"{p['noise_sd_hu']:.0f}")
    console.print(table)
    for case in manifest["cases"]:
        paths = ", ".join(entry["path"] for entry in case["series"].values())
        console.print(f"{case['case_id']}: {paths}, labels {case['labels']['path']}")
    console.print(f"Manifest: {out / 'manifest.json'}")


def _read_series(source: Path) -> "Volume":
    from digital_contrast.imaging.safe_zip import ZipLimits
    from digital_contrast.imaging.series_reader import read_series

    settings = get_settings()
    return read_series(source, zip_limits=ZipLimits(max_total_bytes=settings.max_upload_bytes,
                                                    max_members=settings.max_upload_members))


def _parse_box(box: str | None) -> Box | None:
    if box is None:
        return None
    try:
        values = [float(v) for v in box.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(abs(v) <= 10_000 for v in values):
        raise typer.BadParameter("--box needs six numbers x0,y0,z0,x1,y1,z1 (patient LPS mm)")
    return (values[0], values[1], values[2]), (values[3], values[4], values[5])


def _explained_synthesis(volume: "Volume", use_case: str, method: str | None,
                         box_mm: Box | None
                         ) -> tuple["SynthesisResult", "Confidence", "Attribution | None"]:
    """Conformity, the locked model, synthesis, confidence and (when `method`) attribution;
    nothing written yet. A refused method stops before any inference."""
    from digital_contrast.explain.attribution import box_mask_mm
    from digital_contrast.explain.pipeline import (
        assess_confidence,
        explain_attribution,
        require_method,
    )
    from digital_contrast.imaging.conformity import require_conformity
    from digital_contrast.inference import LockedModel, synthesize
    from digital_contrast.usecases import load_use_case

    case = load_use_case(use_case)
    require_conformity(volume, case)  # a refused input never waits for the model
    model = LockedModel.load(case)
    if method is not None:
        require_method(model.explain_evidence, method)  # EXPLAIN_METHOD_REFUSED
    with console.status("Synthesizing..."):
        result = synthesize(volume, case, model)
    with console.status("Estimating uncertainty (test-time augmentation)..."):
        confidence = assess_confidence(result, model)
    attribution = None
    if method is not None:
        with console.status(f"Attributing ({method})..."):
            assert result.working is not None
            target = box_mask_mm(result.working, *box_mm) if box_mm is not None else None
            attribution = explain_attribution(result, model, method, target)
    return result, confidence, attribution


def _write_maps(out: Path, volume: "Volume", result: "SynthesisResult",
                confidence: "Confidence", attribution: "Attribution | None",
                box_mm: Box | None) -> list["MapOutputs"]:
    from digital_contrast.explain.pipeline import write_attribution_maps, write_confidence_maps

    maps = [write_confidence_maps(out / "maps", volume, result, confidence)]
    if attribution is not None:
        maps.append(write_attribution_maps(
            out / "maps", volume, result, attribution,
            options={"region_box_mm": [list(c) for c in box_mm]} if box_mm else None))
    return maps


def _print_confidence(confidence: "Confidence") -> None:
    if confidence.uncertain_fraction is None:
        console.print("[bold yellow]LOW CONFIDENCE[/]: the model has no uncertainty "
                      "calibration", highlight=False)
    else:
        label = "[bold yellow]LOW CONFIDENCE[/]" if confidence.low_confidence else "Confidence"
        console.print(f"{label}: {confidence.uncertain_fraction:.1%} of the synthesized lumen "
                      f"is uncertain (limit {confidence.limit:.0%}, threshold "
                      f"{confidence.threshold_hu:.1f} HU)", highlight=False)


def _print_maps(maps: list["MapOutputs"]) -> None:
    for outputs in maps:
        console.print(f"{outputs.spec.title} map: {outputs.folder} (previews "
                      f"{', '.join(p.name for p in outputs.previews.values())})",
                      highlight=False)


def _explain_record(maps: list["MapOutputs"], attribution: "Attribution | None",
                    box_mm: Box | None) -> dict[str, object]:
    record: dict[str, object] = {"maps": [m.to_dict() for m in maps]}
    if attribution is not None:
        record["explain"] = attribution.to_dict() | {
            "region_box_mm": [list(c) for c in box_mm] if box_mm else None}
    return record


@app.command("synthesize")
@user_errors
def synthesize_command(
    source: Annotated[Path, typer.Argument(help="DICOM series: folder or zip.")],
    use_case: Annotated[str, typer.Option("--use-case", help="Use case id.")] = "aaa-cta",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("var/synthetic"),
    explain: Annotated[bool, typer.Option(
        "--explain", help="Also write an attribution map (the uncertainty map is always "
        "written).")] = False,
    method: Annotated[str, typer.Option(
        help="Attribution method: integrated-gradients, saliency or occlusion (only those "
             "that passed their sanity checks for the model).")] = "integrated-gradients",
) -> None:
    """Synthesize a labelled contrast series from a non-contrast CT, offline, with its
    confidence and uncertainty map (and an attribution map with --explain)."""
    import json

    from digital_contrast.explain.pipeline import LOW_CONFIDENCE_FLAG
    from digital_contrast.imaging.synthetic import SynthesizingModel, write_synthetic_series

    volume = _read_series(source)
    result, confidence, attribution = _explained_synthesis(
        volume, use_case, method if explain else None, None)
    assert volume.source is not None
    written = write_synthetic_series(
        result.volume, volume.source,
        SynthesizingModel(result.model_name, result.model_version, result.bundle_sha256), out,
        options=result.options,
        flags=[LOW_CONFIDENCE_FLAG] if confidence.low_confidence else [])
    maps = _write_maps(out, volume, result, confidence, attribution, None)
    warnings = result.warnings + ([confidence.warning] if confidence.warning else [])
    record = result.to_dict() | {"output_series_instance_uid": written.series_instance_uid,
                                 "output_folder": str(written.folder),
                                 "confidence": confidence.to_dict(), "warnings": warnings,
                                 **_explain_record(maps, attribution, None)}
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    console.print(f"[bold]{result.evidence}[/]")
    console.print(f"Model {result.model_name} {result.model_version} "
                  f"(bundle {result.bundle_sha256[:12]}), conformity passed; "
                  f"{sum(result.timings_s.values()):.1f} s")
    _print_confidence(confidence)
    for warning in warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    console.print(f"Synthetic series: {written.folder}")
    _print_maps(maps)
    console.print(f"Result: {out / 'result.json'}")


@app.command("explain")
@user_errors
def explain_command(
    source: Annotated[Path, typer.Argument(help="DICOM series: folder or zip.")],
    use_case: Annotated[str, typer.Option("--use-case", help="Use case id.")] = "aaa-cta",
    method: Annotated[str, typer.Option(
        help="Attribution method: integrated-gradients, saliency or occlusion (only those "
             "that passed their sanity checks for the model).")] = "integrated-gradients",
    box: Annotated[str | None, typer.Option(
        help="Explain the enhancement inside this box instead of the synthesized lumen: "
             "x0,y0,z0,x1,y1,z1 in patient (LPS) millimetres.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("var/explain"),
) -> None:
    """Explain a synthesis offline: its confidence, uncertainty map and attribution map
    (Parametric Map, Secondary Captures, PNG previews, NIfTI). No synthetic series is written."""
    import json

    box_mm = _parse_box(box)
    volume = _read_series(source)
    result, confidence, attribution = _explained_synthesis(volume, use_case, method, box_mm)
    maps = _write_maps(out, volume, result, confidence, attribution, box_mm)
    warnings = result.warnings + ([confidence.warning] if confidence.warning else [])
    record = {"use_case": result.use_case, "evidence": result.evidence,
              "model": result.to_dict()["model"], "output_sha256": result.output_sha256,
              "confidence": confidence.to_dict(), "warnings": warnings,
              **_explain_record(maps, attribution, box_mm)}
    (out / "explain.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    console.print(f"[bold]{result.evidence}[/]")
    _print_confidence(confidence)
    for warning in warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    _print_maps(maps)
    console.print(f"Record: {out / 'explain.json'}")


@app.command("validate")
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
    attach: Annotated[bool, typer.Option(
        "--attach", help="Attach the record to the model's registry version (registering a "
        "--bundle first), so that a passing one lets `model promote` give it production.")
    ] = False,
) -> None:
    """Run a validation protocol through the clinical DICOM path and write the validation
    record, report (HTML and PDF) and per-case table. Exit 1 when the protocol is not met."""
    import tempfile

    from digital_contrast.inference.locked_model import LockedModel, resolve_registered
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.model.registry import ModelRegistry
    from digital_contrast.usecases import load_use_case
    from digital_contrast.validation import load_protocol, run_validation

    if bundle is not None and version is not None:
        raise typer.BadParameter("give --bundle or --version, not both")
    fixed = load_protocol(protocol)  # hashed once, before anything runs
    use_case = load_use_case(fixed.protocol.use_case)
    registry = ModelRegistry() if bundle is None or attach else None
    with tempfile.TemporaryDirectory(prefix="dc-bundle-") as tmp:
        if bundle is not None:
            candidate = read_bundle(bundle)
            registered = registry.register(candidate) if registry else None
        else:
            assert registry is not None
            registered = resolve_registered(registry, use_case, version)
            candidate = registry.fetch(registered, Path(tmp))  # MODEL_INTEGRITY
        previous = registry.validation_record(registered) if registry and registered else None
        model = LockedModel.under_validation(candidate, use_case, registered, previous)
    run = run_validation(fixed, model, out or get_settings().build_dir / "validation",
                         progress=lambda line: console.print(line, highlight=False))
    record = run.record
    console.print(f"[bold]{record.evidence}[/]")
    for criterion in record.criteria:
        value = "not measurable" if criterion.value is None else f"{criterion.value:g}"
        console.print(f"  {criterion.metric:<30} {value:>14} {criterion.op} "
                      f"{criterion.threshold:<8g} {'pass' if criterion.passed else 'FAIL'}",
                      highlight=False)
    if attach and registered is not None and registry is not None:
        registered = registry.attach_validation(registered, record)
        _audit("model.validate", "model", f"{registered.name}/{registered.version}",
               {"bundle_sha256": registered.sha256, "passed": record.passed,
                "protocol_sha256": record.protocol_sha256, "run": run.run_id})
        console.print(f"record attached to {registered.name} version {registered.version}")
    console.print(f"validation {'PASSED' if record.passed else 'FAILED'}: {run.folder}",
                  highlight=False, soft_wrap=True)
    if not record.passed:
        raise typer.Exit(1)


@model_app.command("train")
@user_errors
def model_train(
    use_case: Annotated[str, typer.Option("--use-case", help="Use case id.")] = "aaa-cta",
    preset: Annotated[str, typer.Option("--config", help="reference | smoke")] = "reference",
    model_version: Annotated[str, typer.Option(help="Version written into the bundle.")
                             ] = "0.1.0",
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the preset.")] = None,
) -> None:
    """Train a model on phantom cases (one MLflow run) and write its bundle."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from digital_contrast.model.bundle import write_bundle
    from digital_contrast.model.training import reference_config, smoke_config, train
    from digital_contrast.usecases import load_use_case

    case = load_use_case(use_case)
    presets = {"reference": reference_config, "smoke": smoke_config}
    if preset not in presets:
        raise typer.BadParameter(f"--config must be one of {sorted(presets)}")
    base = presets[preset]()
    # The bundle must carry the use case's preprocessing, whatever the preset's grid.
    network = base.network.with_preprocessing(case.preprocessing)
    config = presets[preset](network=network, target_phase=case.target_phase.value,
                             **({"epochs": epochs} if epochs else {}))
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=config.epochs * config.steps_per_epoch,
                                 epoch=0, loss=float("nan"))
        result = train(config, progress=lambda epoch, step, loss: progress.update(
            task, advance=1, epoch=epoch + 1, loss=loss),
            country_iso_code=get_settings().carbon_country.upper())
    folder = get_settings().data_dir / "bundles" / case.id / result.run_id
    bundle = write_bundle(folder, use_case=case, model_version=model_version,
                          network=result.network, state_dict=result.state_dict,
                          provenance={"training_run_id": result.run_id,
                                      "data_manifest_sha256": result.manifest_sha256,
                                      "weights_sha256": result.weights_sha256,
                                      "energy_kwh": result.energy.energy_kwh,
                                      "duration_s": round(result.duration_s, 1)})
    console.print(f"MLflow run {result.run_id}; energy {result.energy.energy_kwh:.4f} kWh "
                  f"({result.energy.method}); last epoch {result.metrics}")
    console.print(f"Bundle {bundle.folder} (sha256 {bundle.sha256}). It is not validated: run "
                  "the validation protocol, then `model register BUNDLE --record RECORD`.")


@model_app.command("calibrate")
@user_errors
def model_calibrate(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")],
    record: Annotated[Path, typer.Option(help="Its validation record JSON (updated in place).")],
) -> None:
    """Calibrate the uncertainty threshold and run the attribution sanity checks on held-out
    phantom cases; the evidence is added to the bundle's validation record."""
    from digital_contrast.explain.evidence import explain_evidence
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.model.network import build_network
    from digital_contrast.model.validation_record import ValidationRecord

    candidate = read_bundle(bundle)
    validation = ValidationRecord.load(record)
    if validation.bundle_sha256 != candidate.sha256:
        raise typer.BadParameter("the record is for another bundle (SHA-256 differs)")
    network = build_network(candidate.manifest.network)
    network.load_state_dict(candidate.state_dict())
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    evidence = explain_evidence(network, candidate.manifest.network,
                                progress=lambda line: console.print(line, highlight=False))
    validation.model_copy(update={"explain": evidence}).save(record)
    u = evidence.uncertainty
    console.print(f"Uncertainty threshold {u.threshold_hu} HU (voxel AUC {u.voxel_auc}, "
                  f"Spearman across cases {u.spearman_cases}); record {record} updated.")
    for check in evidence.sanity:
        console.print(f"{check.method}: randomisation Spearman {check.randomisation_spearman} "
                      f"(<= {check.max_randomisation_spearman}), aorta mass ratio "
                      f"{check.aorta_mass_ratio} (>= {check.min_aorta_mass_ratio}): "
                      f"{'offered' if check.passed else 'REFUSED'}", highlight=False)


@model_app.command("list")
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


@model_app.command("show")
@user_errors
def model_show(name: str, version: str) -> None:
    """One version: bundle identity and its validation record."""
    from digital_contrast.model.registry import ModelRegistry

    registry = ModelRegistry()
    registered = registry.show(name, version)
    console.print(registered)
    record = registry.validation_record(registered)
    console.print(record.model_dump_json(indent=2) if record else "No validation record.")


@model_app.command("register")
@user_errors
def model_register(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")],
    record: Annotated[Path | None, typer.Option(help="Validation record JSON.")] = None,
) -> None:
    """Register a bundle (idempotent) and attach its validation record."""
    from digital_contrast.model.bundle import read_bundle
    from digital_contrast.model.registry import ModelRegistry
    from digital_contrast.model.validation_record import ValidationRecord

    registry = ModelRegistry()
    registered = registry.register(read_bundle(bundle))
    if record is not None:
        registered = registry.attach_validation(registered, ValidationRecord.load(record))
    _audit("model.register", "model", f"{registered.name}/{registered.version}",
           {"bundle_sha256": registered.sha256, "validated": registered.validation_passed})
    console.print(f"{registered.name} version {registered.version} "
                  f"(sha256 {registered.sha256}); validated: {registered.validation_passed}")


@model_app.command("promote")
@user_errors
def model_promote(name: str, version: str,
                  alias: Annotated[str, typer.Option(help="production | candidate")
                                   ] = "production") -> None:
    """Give a version an alias; production needs a passing validation record."""
    from digital_contrast.model.registry import ModelRegistry

    promoted = ModelRegistry().promote(name, version, alias)
    _audit("model.promote", "model", f"{name}/{version}", {"alias": alias,
                                                          "bundle_sha256": promoted.sha256})
    console.print(f"{promoted.name} version {promoted.version}: aliases {list(promoted.aliases)}")


@release_app.command("model")
@user_errors
def release_model_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")],
    record: Annotated[Path, typer.Option(help="Its passing validation record (JSON).")],
    report: Annotated[Path | None, typer.Option(
        help="The quality report it was judged on (bench/model_quality.py --report).")] = None,
) -> None:
    """Release a validated bundle as a reference model: bundle, record, report, model card."""
    from digital_contrast.release.model_release import release_model

    released = release_model(bundle, record, report)
    console.print(f"released {released.bundle.manifest.model_name} "
                  f"{released.bundle.manifest.model_version} (bundle "
                  f"{released.bundle.sha256[:16]}) in {released.folder}")


@release_app.command("candidate")
@user_errors
def release_candidate_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (weights.pt, bundle.json).")],
    record: Annotated[Path, typer.Option(help="Its validation record (JSON), passed or not.")],
    report: Annotated[Path | None, typer.Option(
        help="The quality report it was judged on (bench/model_quality.py --report).")] = None,
) -> None:
    """File an evaluated candidate's evidence under validation/reports/ (not a release: it is
    never registered or promoted)."""
    from digital_contrast.release.model_release import file_candidate

    filed = file_candidate(bundle, record, report)
    console.print(f"filed candidate {filed.bundle.manifest.model_name} "
                  f"{filed.bundle.manifest.model_version} (bundle {filed.bundle.sha256[:16]}, "
                  f"validation {'passed' if filed.record.passed else 'FAILED'}) in "
                  f"{filed.folder}")


@release_app.command("build")
@user_errors
def release_build_command(
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
    from digital_contrast.qms.test_results import DEFAULT_JUNIT
    from digital_contrast.release.record import build_release

    folder = build_release(version, commands=command_names(), junit=junit or DEFAULT_JUNIT,
                           audit=audit)
    console.print(f"released {version} in {folder}")


def _audit(action: str, object_type: str, object_id: str | None,
           detail: dict[str, object]) -> None:
    """An operator action recorded in the service's audit trail."""
    from digital_contrast.store.audit import append_audit

    with _service_state() as state, state.sessions() as db:
        append_audit(db, get_settings().site, "cli", action, object_type, object_id, "success",
                     detail)
        db.commit()


@contextlib.contextmanager
def _service_state():
    """The service's database (migrated) and instance store, released afterwards."""
    from digital_contrast.api.app import open_state

    state = open_state(get_settings())
    try:
        yield state
    finally:
        state.engine.dispose()


@app.command("serve")
@user_errors
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535)] = 8000) -> None:
    """Run the clinical service (DICOMweb, jobs, keys); an admin key is created on first start."""
    import uvicorn

    from digital_contrast.api.app import create_app
    from digital_contrast.store import Role
    from digital_contrast.store.api_keys import create_api_key, list_keys
    from digital_contrast.store.audit import append_audit

    settings = get_settings()
    with _service_state() as state, state.sessions() as db:
        first_start = not list_keys(db)
        if first_start:
            key, plaintext = create_api_key(db, settings.site, "initial-admin", Role.ADMIN)
            append_audit(db, settings.site, "system", "key.create", "api_key", str(key.id),
                         "success", {"role": "admin", "name": key.name, "first_start": True})
            db.commit()
    console.print(f"Digital Contrast {__version__}: http://{host}:{port}/docs "
                  f"(site {settings.site}, data {settings.data_dir.resolve()})")
    if first_start:
        console.print("First start: an admin key was created. It is shown once; keep it:")
        console.print(plaintext, highlight=False, soft_wrap=True)
    # No access log: request lines carry UIDs and query values (PatientID) in URLs.
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False,
                http="httptools", loop="uvloop")


@app.command("worker")
@user_errors
def worker(
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
) -> None:
    """Run a job worker as its own process against the service's database."""
    import threading

    from digital_contrast.api.app import job_context
    from digital_contrast.jobs.worker import Worker

    settings = get_settings()
    with _service_state() as state:
        runner = Worker(job_context(state), lease_seconds=settings.job_lease_s)
        console.print(f"worker {runner.worker_id} on {state.engine.url.get_backend_name()}")
        if once:
            runner.run_once()
        else:
            runner.run_until(threading.Event())


@keys_app.command("create")
@user_errors
def keys_create(
    role: Annotated[str, typer.Option(help="clinician | regulatory | sustainability | admin")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    site: Annotated[str | None, typer.Option(help="Default: DC_SITE.")] = None,
) -> None:
    """Create an API key; the key itself is printed once, as the last line."""
    from digital_contrast.store import Role
    from digital_contrast.store.api_keys import create_api_key
    from digital_contrast.store.audit import append_audit

    if role not in {r.value for r in Role}:
        raise _fail("KEY_ROLE_INVALID", f"role must be one of {[r.value for r in Role]}")
    site = site or get_settings().site
    with _service_state() as state, state.sessions() as db:
        key, plaintext = create_api_key(db, site, name, role)
        append_audit(db, site, "cli", "key.create", "api_key", str(key.id), "success",
                     {"role": role, "name": name})
        db.commit()
        console.print(f"key {key.id} ({key.name}, {role}, site {site}); shown once:")
    print(plaintext)


@keys_app.command("list")
@user_errors
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    from digital_contrast.store.api_keys import list_keys

    table = Table(title="API keys")
    for column in ("id", "name", "role", "site", "created", "last used", "revoked"):
        table.add_column(column)
    with _service_state() as state, state.sessions() as db:
        for key in list_keys(db):
            table.add_row(str(key.id), key.name, key.role.value, key.site,
                          f"{key.created_at:%Y-%m-%d %H:%M}",
                          f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
                          f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-")
    console.print(table)


@keys_app.command("revoke")
@user_errors
def keys_revoke(key_id: int) -> None:
    """Revoke an API key for good."""
    from digital_contrast.store.api_keys import revoke
    from digital_contrast.store.audit import append_audit

    with _service_state() as state, state.sessions() as db:
        key = revoke(db, key_id)
        append_audit(db, key.site, "cli", "key.revoke", "api_key", str(key.id), "success")
        db.commit()
    console.print(f"key {key_id} revoked")


@audit_app.command("verify")
@user_errors
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 naming the first broken link."""
    from digital_contrast.store.audit import verify_audit_chain

    with _service_state() as state, state.sessions() as db:
        result = verify_audit_chain(db)
    if not result.ok:
        err_console.print(f"[bold red]AUDIT_CHAIN_BROKEN[/]: first broken link is event "
                          f"{result.first_broken_id} ({result.checked} checked)")
        raise typer.Exit(1)
    console.print(f"audit chain intact: {result.checked} events, head {result.head_hash[:16]}")


@app.command("purge")
@user_errors
def purge_command() -> None:
    """Delete received instances and results older than DC_RETENTION_DAYS (the audit trail
    and de-identified job records stay)."""
    from digital_contrast.api.app import purge_expired

    with _service_state() as state:
        purge_expired(state)
    console.print(f"purged data older than {get_settings().retention_days:g} days")


JunitOption = Annotated[Path | None, typer.Option(
    "--junit", help="junit report of the test run (default: var/test-reports/junit.xml)")]
OutOption = Annotated[Path, typer.Option("--out", help="Folder for the generated documents.")]


def _test_run(junit: Path | None):  # -> TestRun
    from digital_contrast.qms.test_results import DEFAULT_JUNIT, JunitError, read_junit

    try:
        return read_junit(junit or DEFAULT_JUNIT)
    except JunitError as exc:
        raise DigitalContrastError("QMS_NO_TEST_RUN", str(exc)) from None


def command_names() -> set[str]:
    """Every `<group> <verb>` and top-level verb of this CLI (the clause map names them)."""
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in
             app.registered_commands}
    for group in app.registered_groups:
        names |= {f"{group.name} {c.name}" for c in group.typer_instance.registered_commands}
    return names


@qms_app.command("check")
@user_errors
def qms_check(junit: JunitOption = None) -> None:
    """Every gap in the technical file, with file and line; exit 1 when there is any."""
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


@qms_app.command("trace")
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


@qms_app.command("design")
@user_errors
def qms_design(out: OutOption = Path("build/qms")) -> None:
    """Software detailed design (items, units, public API, imports) with its verification
    against qms/software_items.yaml, as HTML, PDF, Markdown and design.json."""
    from digital_contrast.qms.design import check_design, design_model, write_design
    from digital_contrast.qms.records import QMS_DIR
    from digital_contrast.qms.requirements import load_records

    records, problems = load_records(QMS_DIR)
    if problems:
        raise DigitalContrastError("QMS_RECORD_INVALID", "; ".join(map(str, problems[:5])))
    model = design_model(records)
    found = check_design(model, records)
    for path in write_design(out, model, found):
        console.print(f"wrote {path}")
    console.print(f"design problems: {len(found)} (listed in the document and by qms check)")


@qms_app.command("risk")
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


@qms_app.command("soup")
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


def _thrombus_cells(p: dict) -> tuple[str, str]:
    if p["thrombus_shape"] == "none":
        return "none", "-"
    return (f"{p['thrombus_shape']} {p['thrombus_max_thickness_mm']:.0f} mm",
            f"{p['thrombus_minus_blood_hu']:+.1f}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""`digital-contrast synthesize` and `explain`: the clinical path offline, on a DICOM series
folder or zip, with the same composition a job runs (`pipeline.run_clinical_path`)."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digital_contrast.cli.output import console, user_errors
from digital_contrast.config import get_settings

if TYPE_CHECKING:
    from digital_contrast.explain.steps import Confidence
    from digital_contrast.pipeline import AttributionRequest, ClinicalResult

METHOD_HELP = ("Attribution method: integrated-gradients, saliency or occlusion (only those "
               "that passed their sanity checks for the model).")
SeriesArgument = Annotated[Path, typer.Argument(help="DICOM series: folder or zip.")]
UseCaseOption = Annotated[str, typer.Option("--use-case", help="Use case id.")]


def _parse_box(box: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if box is None:
        return None
    try:
        values = [float(v) for v in box.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(abs(v) <= 10_000 for v in values):
        raise typer.BadParameter("--box needs six numbers x0,y0,z0,x1,y1,z1 (patient LPS mm)")
    return tuple(values[:3]), tuple(values[3:])


def _run(source: Path, use_case: str, out: Path, attribution: "AttributionRequest | None", *,
         write_series: bool) -> "ClinicalResult":
    from digital_contrast.imaging.safe_zip import ZipLimits
    from digital_contrast.inference import LockedModel
    from digital_contrast.pipeline import run_clinical_path
    from digital_contrast.usecases import load_use_case

    settings = get_settings()
    with console.status("Synthesizing, then estimating uncertainty (test-time augmentation)"
                        f"{' and attributing' if attribution else ''}..."):
        return run_clinical_path(
            source, load_use_case(use_case), LockedModel.load, out, attribution=attribution,
            write_series=write_series,
            zip_limits=ZipLimits(max_total_bytes=settings.max_upload_bytes,
                                 max_members=settings.max_upload_members))


def _print_confidence(confidence: "Confidence") -> None:
    if confidence.uncertain_fraction is None:
        console.print("[bold yellow]LOW CONFIDENCE[/]: the model has no uncertainty "
                      "calibration", highlight=False)
    else:
        label = "[bold yellow]LOW CONFIDENCE[/]" if confidence.low_confidence else "Confidence"
        console.print(f"{label}: {confidence.uncertain_fraction:.1%} of the synthesized lumen "
                      f"is uncertain (limit {confidence.limit:.0%}, threshold "
                      f"{confidence.threshold_hu:.1f} HU)", highlight=False)


def _report(result: "ClinicalResult", record: dict[str, object], path: Path) -> None:
    """Write the record and print what the reader must see first."""
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    console.print(f"[bold]{result.synthesis.evidence}[/]")
    _print_confidence(result.confidence)
    for warning in result.warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    if result.series is not None:
        console.print(f"Synthetic series: {result.series.folder}")
    for outputs in result.maps:
        console.print(f"{outputs.spec.title} map: {outputs.folder} (previews "
                      f"{', '.join(p.name for p in outputs.previews.values())})",
                      highlight=False)


@user_errors
def synthesize_command(
    source: SeriesArgument,
    use_case: UseCaseOption = "aaa-cta",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("var/synthetic"),
    explain: Annotated[bool, typer.Option(
        "--explain", help="Also write an attribution map (the uncertainty map is always "
        "written).")] = False,
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "integrated-gradients",
) -> None:
    """Synthesize a labelled contrast series from a non-contrast CT, offline, with its
    confidence and uncertainty map (and an attribution map with --explain)."""
    from digital_contrast.pipeline import AttributionRequest

    result = _run(source, use_case, out, AttributionRequest(method) if explain else None,
                  write_series=True)
    assert result.series is not None
    record = result.to_dict() | {"output_folder": str(result.series.folder),
                                 "maps": [m.to_dict() for m in result.maps]}
    synthesis = result.synthesis
    console.print(f"Model {synthesis.model_name} {synthesis.model_version} "
                  f"(bundle {synthesis.bundle_sha256[:12]}), conformity passed; "
                  f"{sum(result.timings_s.values()):.1f} s")
    _report(result, record, out / "result.json")
    console.print(f"Result: {out / 'result.json'}")


@user_errors
def explain_command(
    source: SeriesArgument,
    use_case: UseCaseOption = "aaa-cta",
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "integrated-gradients",
    box: Annotated[str | None, typer.Option(
        help="Explain the enhancement inside this box instead of the synthesized lumen: "
             "x0,y0,z0,x1,y1,z1 in patient (LPS) millimetres.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("var/explain"),
) -> None:
    """Explain a synthesis offline: its confidence, uncertainty map and attribution map
    (Parametric Map, Secondary Captures, PNG previews, NIfTI). No synthetic series is written."""
    from digital_contrast.pipeline import AttributionRequest

    request = AttributionRequest(method, _parse_box(box))
    result = _run(source, use_case, out, request, write_series=False)
    full = result.to_dict()
    record = {key: full[key] for key in ("use_case", "evidence", "model", "output_sha256",
                                         "confidence", "warnings", "explain")}
    record["maps"] = [m.to_dict() for m in result.maps]
    _report(result, record, out / "explain.json")
    console.print(f"Record: {out / 'explain.json'}")

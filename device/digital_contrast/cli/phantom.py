"""`digital-contrast phantom ...`: the procedural CT phantom."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from digital_contrast.cli.output import console, user_errors
from digital_contrast.config import get_settings
from digital_contrast.phantom import OutputFormat, PhantomSize

NAME = "phantom"
app = typer.Typer(no_args_is_help=True, help="Procedural abdominal CT phantom.")


@app.command("generate")
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
    use_case: Annotated[str, typer.Option(
        help="Use case whose phantom to generate: aaa-cta (the base phantom) or one with a "
             "phantom extension, e.g. abdomen-pv.")] = "aaa-cta",
) -> None:
    """Generate phantom cases: NCCT, arterial and portal-venous series, labels, manifest."""
    from digital_contrast.phantom.export import generate_study
    from digital_contrast.phantom.extensions import BASE_USE_CASE, use_cases

    if use_case not in use_cases():
        raise typer.BadParameter(f"{use_case!r} is not one of {', '.join(use_cases())}",
                                 param_hint="--use-case")
    out = out or get_settings().data_dir / "phantom"
    with console.status("Generating phantom cases...") as status:
        manifest = generate_study(n, out, seed=seed, size=size, fmt=fmt,
                                  progress=lambda i, cid: status.update(f"{cid} ({i}/{n})"),
                                  use_case=use_case)
    if use_case != BASE_USE_CASE:
        _extension_summary(out, manifest)
        return
    table = Table(title=f"Phantom study in {out}", caption=manifest["notice"])
    for column in ("case", "slices x rows x cols", "voxel (mm)", "AAA (mm)", "thrombus",
                   "thrombus-blood (HU)", "noise SD (HU)"):
        table.add_column(column, overflow="fold")
    for case in manifest["cases"]:
        p = case["parameters"]
        table.add_row(case["case_id"], " x ".join(map(str, case["shape"])),
                      " x ".join(f"{s:.2f}" for s in case["spacing_mm"]),
                      f"{p['aorta']['aneurysm_max_diameter_mm']:.0f}", *_thrombus_cells(p),
                      f"{p['scanner']['noise_sd_hu']:.0f}")
    _print_files(out, table, manifest)


def _extension_summary(out: Path, manifest: dict) -> None:
    table = Table(title=f"Phantom study ({manifest['use_case']}) in {out}",
                  caption=manifest["notice"])
    for column in ("case", "slices x rows x cols", "voxel (mm)", "kVp", "liver", "lesions",
                   "noise SD (HU)"):
        table.add_column(column, overflow="fold")
    for case in manifest["cases"]:
        p = case["parameters"]
        ext = p["extension"]
        lesions = ", ".join(f"{'cyst' if row[0] == 0 else 'metastasis'} {row[4]:.0f} mm"
                            for row in ext.get("lesions", [])) or "-"
        table.add_row(case["case_id"], " x ".join(map(str, case["shape"])),
                      " x ".join(f"{s:.2f}" for s in case["spacing_mm"]),
                      f"{p['scanner']['kvp']:g}", ext.get("liver_state", "-"), lesions,
                      f"{p['scanner']['noise_sd_hu']:.0f}")
    _print_files(out, table, manifest)


def _thrombus_cells(p: dict) -> tuple[str, str]:
    aorta = p["aorta"]
    if aorta["thrombus_shape"] == "none":
        return "none", "-"
    return (f"{aorta['thrombus_shape']} {aorta['thrombus_max_thickness_mm']:.0f} mm",
            f"{p['intensities']['thrombus_minus_blood_hu']:+.1f}")


def _print_files(out: Path, table: Table, manifest: dict) -> None:
    console.print(table)
    for case in manifest["cases"]:
        paths = ", ".join(entry["path"] for entry in case["series"].values())
        console.print(f"{case['case_id']}: {paths}, labels {case['labels']['path']}")
    console.print(f"Manifest: {out / 'manifest.json'}")

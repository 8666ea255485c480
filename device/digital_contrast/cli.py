"""`digital-contrast <group> <verb>`: the one command-line program (the only module that may
import every item)."""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from digital_contrast import __version__
from digital_contrast.config import get_settings
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.phantom import OutputFormat, PhantomSize

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

app = typer.Typer(name="digital-contrast", no_args_is_help=True, add_completion=False,
                  help="Digital Contrast: synthetic contrast-enhanced CT from non-contrast CT. "
                       "The reference model is trained on a procedural phantom and is not "
                       "clinically validated.")
phantom_app = typer.Typer(no_args_is_help=True, help="Procedural abdominal CT phantom.")
app.add_typer(phantom_app, name="phantom")


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


def _thrombus_cells(p: dict) -> tuple[str, str]:
    if p["thrombus_shape"] == "none":
        return "none", "-"
    return (f"{p['thrombus_shape']} {p['thrombus_max_thickness_mm']:.0f} mm",
            f"{p['thrombus_minus_blood_hu']:+.1f}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

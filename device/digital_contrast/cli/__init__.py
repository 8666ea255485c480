"""`digital-contrast <group> <verb>`: the one command-line program, the composition root (the
only package that may import every item). One module per command group; every command parses
its arguments and calls the core. Heavy libraries (torch, MONAI, FastAPI) are imported inside
the commands that run them, so operator commands start fast."""

import typer
from pydantic import ValidationError

from digital_contrast import __version__
from digital_contrast.cli import (
    audit,
    batch,
    deliveries,
    destinations,
    keys,
    model,
    phantom,
    qms,
    release,
    repository,
    senders,
    service,
    signing,
    synthesis,
    usecase,
)
from digital_contrast.cli.command_names import command_names as names_of
from digital_contrast.cli.output import console, fail
from digital_contrast.cli.validate import validate_command
from digital_contrast.config import get_settings

app = typer.Typer(name="digital-contrast", no_args_is_help=True, add_completion=False,
                  help="Digital Contrast: synthetic contrast-enhanced CT from non-contrast CT. "
                       "The reference model is trained on a procedural phantom and is not "
                       "clinically validated.")


@app.callback()
def _check_settings() -> None:
    """Refuse to start on invalid DC_* settings, naming the variable."""
    try:
        get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"DC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in exc.errors())
        raise fail("CONFIG_INVALID", problems) from None


@app.command()
def version() -> None:
    """Print the software version and the site this installation is configured for."""
    console.print(f"digital-contrast {__version__} (site: {get_settings().site})")


app.command("synthesize")(synthesis.synthesize_command)
app.command("explain")(synthesis.explain_command)
app.command("validate")(validate_command)
app.command("serve")(service.serve)
app.command("worker")(service.worker)
app.command("dimse")(service.dimse)
app.command("purge")(service.purge_command)
for group in (phantom, model, release, keys, senders, destinations, deliveries, signing, audit,
              batch, qms, usecase, repository):
    app.add_typer(group.app, name=group.NAME)


def command_names() -> set[str]:
    """Every `<group> <verb>` and top-level verb of this CLI (the clause map names them)."""
    return names_of(typer.main.get_command(app))


def main() -> None:
    app()


if __name__ == "__main__":
    main()

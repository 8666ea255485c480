"""`digital-contrast usecase ...`: adding a use case to the technical file."""

from typing import Annotated

import typer

from digital_contrast.cli.output import console, user_errors
from digital_contrast.config import REPO_ROOT
from digital_contrast.usecases import Phase

NAME = "usecase"
app = typer.Typer(no_args_is_help=True, help="Use cases: scaffold a new one.")


@app.command("new")
@user_errors
def usecase_new(
    use_case: Annotated[str, typer.Argument(help="The new use case's id, e.g. liver-arterial.")],
    title: Annotated[str, typer.Option(help="Its title, as the catalogue shows it.")],
    phase: Annotated[Phase, typer.Option("--phase", help="The contrast phase it synthesizes.")],
    base: Annotated[str, typer.Option("--from", help="The use case whose records are copied.")
                    ] = "abdomen-pv",
) -> None:
    """Write the definition, protocol, training config and risk review of a new use case, its
    section of the instructions for use and its id in the device record, every statement to be
    written marked as a gap that qms check refuses until written; then print the checklist."""
    from digital_contrast.qms.use_case_scaffold import CHECKLIST, scaffold_use_case

    done = scaffold_use_case(REPO_ROOT, use_case, title, phase, base)
    for path in done.written:
        console.print(f"wrote {path}", highlight=False)
    for path in done.changed:
        console.print(f"added to {path}", highlight=False)
    console.print(f"\nTo do for {use_case} (docs/regulatory.md, 'Adding a use case'):")
    for number, step in enumerate(CHECKLIST, 1):
        console.print(f"{number}. {step.replace('ID', use_case)}", highlight=False)

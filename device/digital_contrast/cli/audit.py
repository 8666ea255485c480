"""`digital-contrast audit ...`: the hash-chained audit trail."""

import typer

from digital_contrast.cli.output import console, err_console, user_errors
from digital_contrast.cli.state import service_state

NAME = "audit"
app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")


@app.command("verify")
@user_errors
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 naming the first broken link."""
    from digital_contrast.store.audit import verify_audit_chain

    with service_state() as state, state.sessions() as db:
        result = verify_audit_chain(db)
    if not result.ok:
        err_console.print(f"[bold red]AUDIT_CHAIN_BROKEN[/]: first broken link is event "
                          f"{result.first_broken_id} ({result.checked} checked)")
        raise typer.Exit(1)
    console.print(f"audit chain intact: {result.checked} events, head {result.head_hash[:16]}")

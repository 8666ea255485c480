"""`digital-contrast senders ...`: the DIMSE peers (calling AE titles) allowed to send images,
and the site each one's images belong to."""

from typing import Annotated

import typer
from rich.table import Table

from digital_contrast.cli.output import console, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings

NAME = "senders"
app = typer.Typer(no_args_is_help=True,
                  help="DIMSE senders: calling AE titles allowed to C-STORE and C-ECHO.")


@app.command("add")
@user_errors
def senders_add(
    ae_title: Annotated[str, typer.Argument(help="The sender's calling AE title.")],
    site: Annotated[str | None, typer.Option(help="Site its images belong to (default: "
                                                  "DC_SITE).")] = None,
    host: Annotated[str | None, typer.Option(help="IP address it must connect from "
                                                  "(default: any).")] = None,
    description: Annotated[str | None, typer.Option(help="What the sender is.")] = None,
) -> None:
    """Allow an AE title to send images (C-STORE) and echo."""
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.dicom_senders import add_sender

    site = site or get_settings().site
    with service_state() as state, state.sessions() as db:
        sender = add_sender(db, ae_title, site, host=host, description=description)
        append_audit(db, site, "cli", "sender.add", "dicom_sender", sender.ae_title, "success",
                     {"host": sender.host})
        db.commit()
        console.print(f"sender {sender.ae_title} (site {site}, from "
                      f"{sender.host or 'any address'})")


@app.command("list")
@user_errors
def senders_list() -> None:
    """List the senders, enabled or not."""
    from digital_contrast.store.dicom_senders import list_senders

    table = Table(title="DIMSE senders")
    for column in ("AE title", "site", "host", "description", "added", "disabled"):
        table.add_column(column)
    with service_state() as state, state.sessions() as db:
        for s in list_senders(db):
            table.add_row(s.ae_title, s.site, s.host or "any", s.description or "",
                          f"{s.created_at:%Y-%m-%d %H:%M}",
                          f"{s.disabled_at:%Y-%m-%d %H:%M}" if s.disabled_at else "-")
    console.print(table)


def _set_enabled(ae_title: str, enabled: bool) -> None:
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.dicom_senders import set_sender_enabled

    verb = "enable" if enabled else "disable"
    with service_state() as state, state.sessions() as db:
        sender = set_sender_enabled(db, ae_title, enabled)
        append_audit(db, sender.site, "cli", f"sender.{verb}", "dicom_sender",
                     sender.ae_title, "success", {})
        db.commit()
    console.print(f"sender {sender.ae_title} {verb}d")


@app.command("disable")
@user_errors
def senders_disable(ae_title: str) -> None:
    """Refuse an AE title from its next association on (its row and audit trail stay)."""
    _set_enabled(ae_title, False)


@app.command("enable")
@user_errors
def senders_enable(ae_title: str) -> None:
    """Accept a disabled AE title again."""
    _set_enabled(ae_title, True)

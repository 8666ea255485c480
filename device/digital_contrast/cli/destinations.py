"""`digital-contrast destinations ...`: where a site's results are pushed (PACS by DIMSE
C-STORE or DICOMweb STOW-RS)."""

import sys
from typing import Annotated

import typer
from rich.table import Table

from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings

NAME = "destinations"
app = typer.Typer(no_args_is_help=True,
                  help="Result destinations: PACS reached by C-STORE or STOW-RS.")


@app.command("add")
@user_errors
def destinations_add(
    name: Annotated[str, typer.Argument(help="Name within the site, e.g. pacs.")],
    ae_title: Annotated[str | None, typer.Option(help="DIMSE: the peer's AE title.")] = None,
    host: Annotated[str | None, typer.Option(help="DIMSE: the peer's host.")] = None,
    port: Annotated[int | None, typer.Option(help="DIMSE: the peer's port.")] = None,
    transfer_syntax: Annotated[list[str] | None, typer.Option(
        help="DIMSE: a transfer syntax UID to propose, most preferred first (repeat; "
             "default Explicit then Implicit VR Little Endian).")] = None,
    url: Annotated[str | None, typer.Option(help="STOW-RS: the DICOMweb root, e.g. "
                                                 "https://pacs/dicom-web.")] = None,
    auth_header: Annotated[str | None, typer.Option(
        help="STOW-RS: an HTTP header to send (e.g. Authorization); its value is read from "
             "standard input and kept in the keys folder.")] = None,
    tls: Annotated[bool, typer.Option(help="DIMSE over TLS (certificates in the keys "
                                           "folder's tls/).")] = False,
    auto: Annotated[bool, typer.Option(help="Push every succeeded job's result here.")] = False,
    site: Annotated[str | None, typer.Option(help="Default: DC_SITE.")] = None,
) -> None:
    """Add a destination: --ae-title, --host and --port for DIMSE, or --url for STOW-RS."""
    from digital_contrast.delivery import store_credential
    from digital_contrast.delivery.c_store import SENDABLE_SYNTAXES
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.destinations import add_destination
    from digital_contrast.store.enums import Protocol

    site = site or get_settings().site
    protocol = Protocol.STOW_RS if url is not None else Protocol.DIMSE
    unsendable = [t for t in transfer_syntax or [] if t not in SENDABLE_SYNTAXES]
    if unsendable:
        raise fail("DESTINATION_INVALID", f"results cannot be sent in {unsendable[0]}; one of "
                   f"{', '.join(SENDABLE_SYNTAXES)}")
    secret = None
    if auth_header is not None:
        if protocol is Protocol.DIMSE or not auth_header.strip():
            raise fail("DESTINATION_INVALID", "--auth-header names an HTTP header of a STOW-RS "
                       "destination")
        secret = sys.stdin.readline().strip()
        if not secret:
            raise fail("DESTINATION_INVALID", f"no value for {auth_header} on standard input")
    with service_state() as state, state.sessions() as db:
        add_destination(db, site, name, protocol, ae_title=ae_title, host=host, port=port,
                        url=url, transfer_syntaxes=transfer_syntax, auto=auto, tls=tls,
                        has_credential=secret is not None)
        if secret is not None:
            assert auth_header is not None
            store_credential(keys_folder(state.settings), site, name, auth_header.strip(),
                             secret)
        append_audit(db, site, "cli", "destination.add", "destination", name, "success",
                     {"protocol": protocol.value, "auto": auto,
                      "credential": secret is not None})
        db.commit()
    where = (f"{ae_title}@{host}:{port}{' (TLS)' if tls else ''}"
             if protocol is Protocol.DIMSE else url)
    console.print(f"destination {name} (site {site}): {protocol.value} {where}"
                  f"{', every result' if auto else ''}")


@app.command("list")
@user_errors
def destinations_list() -> None:
    """List the destinations (never their credentials)."""
    from digital_contrast.store.destinations import list_destinations

    table = Table(title="Result destinations")
    for column in ("site", "name", "protocol", "address", "transfer syntaxes", "auto",
                   "credential", "disabled"):
        table.add_column(column)
    with service_state() as state, state.sessions() as db:
        for d in list_destinations(db):
            address = f"{d.ae_title}@{d.host}:{d.port}" if d.ae_title else str(d.url)
            table.add_row(d.site, d.name, d.protocol.value, address,
                          " ".join(d.transfer_syntaxes) or "-", "yes" if d.auto else "no",
                          "yes" if d.has_credential else "no",
                          f"{d.disabled_at:%Y-%m-%d %H:%M}" if d.disabled_at else "-")
    console.print(table)


@app.command("credential")
@user_errors
def destinations_credential(
    name: str,
    auth_header: Annotated[str, typer.Option(help="The HTTP header to send; its new value is "
                                                  "read from standard input.")],
    site: Annotated[str | None, typer.Option(help="Default: DC_SITE.")] = None,
) -> None:
    """Set or rotate the credential of a STOW-RS destination (replaced whole, at once)."""
    from digital_contrast.delivery import store_credential
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.destinations import get_destination
    from digital_contrast.store.enums import Protocol

    site = site or get_settings().site
    secret = sys.stdin.readline().strip()
    if not auth_header.strip() or not secret:
        raise fail("DESTINATION_INVALID", "a header name and its value on standard input")
    with service_state() as state, state.sessions() as db:
        destination = get_destination(db, site, name, enabled=False)
        if destination.protocol is not Protocol.STOW_RS:
            raise fail("DESTINATION_INVALID", f"{name} is a DIMSE destination")
        store_credential(keys_folder(state.settings), site, name, auth_header.strip(), secret)
        destination.has_credential = True
        append_audit(db, site, "cli", "destination.credential", "destination", name,
                     "success", {"header": auth_header.strip()})
        db.commit()
    console.print(f"credential of {name} set")


def _set_enabled(name: str, site: str | None, enabled: bool) -> None:
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.destinations import set_destination_enabled

    site = site or get_settings().site
    verb = "enable" if enabled else "disable"
    with service_state() as state, state.sessions() as db:
        set_destination_enabled(db, site, name, enabled)
        append_audit(db, site, "cli", f"destination.{verb}", "destination", name, "success",
                     {})
        db.commit()
    console.print(f"destination {name} {verb}d")


@app.command("disable")
@user_errors
def destinations_disable(name: str,
                         site: Annotated[str | None, typer.Option()] = None) -> None:
    """No new deliveries to it (queued ones are still attempted)."""
    _set_enabled(name, site, False)


@app.command("enable")
@user_errors
def destinations_enable(name: str, site: Annotated[str | None, typer.Option()] = None) -> None:
    """Accept deliveries to a disabled destination again."""
    _set_enabled(name, site, True)

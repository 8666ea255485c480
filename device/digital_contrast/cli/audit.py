"""`digital-contrast audit ...`: the sealed, hash-chained audit trail."""

import typer

from digital_contrast.cli.output import console, err_console, user_errors
from digital_contrast.cli.state import audit, service_state

NAME = "audit"
app = typer.Typer(no_args_is_help=True, help="The sealed, hash-chained audit trail.")

_WHY = {
    "LINK": "an event was removed or inserted before it",
    "CONTENT": "the event was edited",
    "SEAL": "its seal does not check: the chain was recomputed or the event forged",
    "KEY_UNKNOWN": "it is sealed with a key this site does not hold",
    "SEQUENCE": "its position was changed",
    "UNSEALED": "events without a seal where every event must carry one",
    "TRUNCATED": "the trail ends before the head recorded in the anchor file: newest events "
                 "were removed",
    "ANCHOR_MISMATCH": "the event at the anchored position is not the one anchored",
    "ANCHOR_INVALID": "the anchor file holds a line that is not a keyed anchor (edited or "
                      "forged)",
    "ANCHOR_MISSING": "the anchor file is missing",
}


@app.command("verify")
@user_errors
def audit_verify() -> None:
    """Recompute the chain and every seal and hold its end against the anchor file; exit 1
    naming the first broken event and why."""
    from digital_contrast.store.audit import verify_audit_chain

    with service_state() as state, state.sessions() as db:
        result = verify_audit_chain(db)
    anchored = f"anchored head {result.anchored_seq}" if result.anchored_seq else "no anchor yet"
    if not result.ok:
        where = (f"event {result.first_broken_id}" if result.first_broken_id
                 else "the end of the trail")
        reason = result.reason.value if result.reason else "UNKNOWN"
        err_console.print(f"[bold red]AUDIT_CHAIN_BROKEN[/]: first broken link is {where} "
                          f"({reason}: {_WHY.get(reason, reason)}; {result.checked} checked, "
                          f"{anchored})")
        raise typer.Exit(1)
    console.print(f"audit chain intact: {result.checked} events, head "
                  f"{result.head_hash[:16]}, {anchored}")


@app.command("rotate-key")
@user_errors
def audit_rotate_key() -> None:
    """Seal new events with a new audit key; the old one is kept (retired) to verify the events
    it sealed. Recorded in the trail under the new key."""
    from digital_contrast.config import get_settings
    from digital_contrast.keys import keys_folder
    from digital_contrast.service.assembly import AUDIT_SECRET
    from digital_contrast.store.audit_seal import key_id

    folder = keys_folder(get_settings())
    old = key_id(folder.secret(AUDIT_SECRET))
    new = key_id(folder.rotate_secret(AUDIT_SECRET))
    audit("audit.key_rotated", "audit", new, {"retired_key": old, "current_key": new})
    console.print(f"audit key rotated: new events are sealed with {new}; {old} is retired "
                  "and still verifies the events it sealed")


@app.command("export")
@user_errors
def audit_export() -> None:
    """Send every audit event not yet sent to the audit repository (DC_AUDIT_SYSLOG) now; the
    service does this continuously while it runs."""
    from digital_contrast.atna import AuditExporter, audit_sender
    from digital_contrast.atna.syslog import SyslogError
    from digital_contrast.store.audit_exports import exported_up_to

    with service_state() as state:
        sender = audit_sender(state.settings)
        if sender is None:
            raise SyslogError("AUDIT_SYSLOG_INVALID", "DC_AUDIT_SYSLOG is not set")
        exporter = AuditExporter(state.sessions, sender)
        try:
            batches = exporter.drain()
        finally:
            sender.close()
        with state.sessions() as db:
            position = exported_up_to(db, exporter.target)
    console.print(f"audit export to {exporter.target}: {batches} batches sent, exported up to "
                  f"event {position}")

"""`digital-contrast keys ...`: the service's API keys."""

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings

NAME = "keys"
app = typer.Typer(no_args_is_help=True, help="API keys of the service.")


@app.command("create")
@user_errors
def keys_create(
    role: Annotated[str, typer.Option(
        help="clinician | regulatory | sustainability | admin | researcher (the repository's "
             "search and cohorts only).")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    site: Annotated[str | None, typer.Option(help="Default: DC_SITE.")] = None,
    valid_days: Annotated[int, typer.Option(min=1, max=3650,
                                            help="Days until the key expires.")] = 365,
) -> None:
    """Create an API key; the key itself is printed once, as the last line."""
    from digital_contrast.store import Role
    from digital_contrast.store.api_keys import create_api_key
    from digital_contrast.store.audit import append_audit

    if role not in {r.value for r in Role}:
        raise fail("KEY_ROLE_INVALID", f"role must be one of {[r.value for r in Role]}")
    site = site or get_settings().site
    with service_state() as state, state.sessions() as db:
        key, plaintext = create_api_key(db, site, name, role,
                                        valid_for=timedelta(days=valid_days))
        append_audit(db, site, "cli", "key.create", "api_key", str(key.id), "success",
                     {"role": role, "name": name, "valid_days": valid_days})
        db.commit()
        console.print(f"key {key.id} ({key.name}, {role}, site {site}, expires "
                      f"{key.expires_at:%Y-%m-%d}); shown once:")
    print(plaintext)


@app.command("rotate")
@user_errors
def keys_rotate(
    key_id: int,
    grace_days: Annotated[int, typer.Option(min=0, max=90, help="Days the old key keeps "
                                                                "working.")] = 7,
    valid_days: Annotated[int, typer.Option(min=1, max=3650,
                                            help="Days until the new key expires.")] = 365,
) -> None:
    """Make a successor of a key (same name, role and site; printed once, as the last line);
    the old key expires after the grace period."""
    from digital_contrast.store.api_keys import rotate_api_key
    from digital_contrast.store.audit import append_audit

    with service_state() as state, state.sessions() as db:
        old, new, plaintext = rotate_api_key(db, key_id, grace=timedelta(days=grace_days),
                                             valid_for=timedelta(days=valid_days))
        append_audit(db, old.site, "cli", "key.rotate", "api_key", str(old.id), "success",
                     {"successor": new.id, "grace_days": grace_days})
        db.commit()
        console.print(f"key {new.id} replaces key {old.id} ({old.name}, {old.role.value}, "
                      f"site {old.site}), which expires {old.expires_at:%Y-%m-%d %H:%M} UTC; "
                      "shown once:")
    print(plaintext)


@app.command("list")
@user_errors
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    from digital_contrast.store.api_keys import list_keys

    table = Table(title="API keys")
    for column in ("id", "name", "role", "site", "created", "last used", "expires",
                   "revoked"):
        table.add_column(column)
    with service_state() as state, state.sessions() as db:
        for key in list_keys(db):
            table.add_row(str(key.id), key.name, key.role.value, key.site,
                          f"{key.created_at:%Y-%m-%d %H:%M}",
                          f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
                          f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "never",
                          f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-")
    console.print(table)


@app.command("revoke")
@user_errors
def keys_revoke(key_id: int) -> None:
    """Revoke an API key for good."""
    from digital_contrast.store.api_keys import revoke
    from digital_contrast.store.audit import append_audit

    with service_state() as state, state.sessions() as db:
        key = revoke(db, key_id)
        append_audit(db, key.site, "cli", "key.revoke", "api_key", str(key.id), "success")
        db.commit()
    console.print(f"key {key_id} revoked")

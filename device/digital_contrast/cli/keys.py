"""`digital-contrast keys ...`: the service's API keys."""

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
    role: Annotated[str, typer.Option(help="clinician | regulatory | sustainability | admin")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    site: Annotated[str | None, typer.Option(help="Default: DC_SITE.")] = None,
) -> None:
    """Create an API key; the key itself is printed once, as the last line."""
    from digital_contrast.store import Role
    from digital_contrast.store.api_keys import create_api_key
    from digital_contrast.store.audit import append_audit

    if role not in {r.value for r in Role}:
        raise fail("KEY_ROLE_INVALID", f"role must be one of {[r.value for r in Role]}")
    site = site or get_settings().site
    with service_state() as state, state.sessions() as db:
        key, plaintext = create_api_key(db, site, name, role)
        append_audit(db, site, "cli", "key.create", "api_key", str(key.id), "success",
                     {"role": role, "name": name})
        db.commit()
        console.print(f"key {key.id} ({key.name}, {role}, site {site}); shown once:")
    print(plaintext)


@app.command("list")
@user_errors
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    from digital_contrast.store.api_keys import list_keys

    table = Table(title="API keys")
    for column in ("id", "name", "role", "site", "created", "last used", "revoked"):
        table.add_column(column)
    with service_state() as state, state.sessions() as db:
        for key in list_keys(db):
            table.add_row(str(key.id), key.name, key.role.value, key.site,
                          f"{key.created_at:%Y-%m-%d %H:%M}",
                          f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
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

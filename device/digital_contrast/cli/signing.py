"""`digital-contrast signing ...`: the site's key for signing validation records."""

import typer

from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import audit
from digital_contrast.config import get_settings

NAME = "signing"
app = typer.Typer(no_args_is_help=True,
                  help="The key that signs validation records (in the keys folder, DC_KEYS_DIR).")


def _report(key_id: str, line: str) -> None:
    trusted = line in get_settings().trusted_keys
    console.print(f"signing key {key_id}; trusted by this site: "
                  f"{'yes' if trusted else 'NO - add the line below to DC_TRUSTED_KEYS'}",
                  highlight=False)
    print(line)  # the public key line, last, for scripts


@app.command("create")
@user_errors
def signing_create() -> None:
    """Create the site's first signing key (0600 in the keys folder); prints its public line."""
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.keys.signing import create_signing_key, current_key_id

    folder = keys_folder()
    if current_key_id(folder):
        raise fail("SIGNING_KEY_EXISTS", "the keys folder already has a signing key; "
                   "'digital-contrast signing rotate' replaces it")
    signer = create_signing_key(folder)
    audit("signing.create", "signing_key", signer.key_id, {})
    _report(signer.key_id, signer.public_line)


@app.command("rotate")
@user_errors
def signing_rotate() -> None:
    """Make a new current signing key and retire the old one (kept under signing/retired/).
    Records the old key signed stay valid while its public line stays in DC_TRUSTED_KEYS;
    removing it revokes them."""
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.keys.signing import create_signing_key, current_key_id

    folder = keys_folder()
    previous = current_key_id(folder)
    signer = create_signing_key(folder)
    audit("signing.rotate", "signing_key", signer.key_id, {"retired": previous})
    _report(signer.key_id, signer.public_line)


@app.command("show")
@user_errors
def signing_show() -> None:
    """The current signing key's id and public line, and whether the site trusts it."""
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.keys.signing import current_signer

    signer = current_signer(keys_folder())
    _report(signer.key_id, signer.public_line)

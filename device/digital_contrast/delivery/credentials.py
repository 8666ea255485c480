"""The credential of a STOW-RS destination (one HTTP header, e.g. an API key or a bearer
token), kept in the keys folder like every site secret: never in the database, a log line or
a command's arguments. One file per (site, destination), 0600, replaced whole."""

import hashlib
import json

from digital_contrast.keys.folder import KeysFolder

_FOLDER = "destinations"


def _parts(site: str, name: str) -> tuple[str, str]:
    # Hashed: a site or destination name never becomes a path.
    return _FOLDER, hashlib.sha256(f"{site}\x1f{name}".encode()).hexdigest()[:32] + ".json"


def store_credential(folder: KeysFolder, site: str, name: str, header: str,
                     value: str) -> None:
    folder.write_private(json.dumps({"site": site, "destination": name,
                                     "headers": {header: value}}).encode(),
                         *_parts(site, name))


def credential_headers(folder: KeysFolder, site: str, name: str) -> dict[str, str]:
    """The destination's headers; empty when it has none (KEY_PERMISSIONS if readable by
    others)."""
    data = folder.read_private(*_parts(site, name))
    return dict(json.loads(data)["headers"]) if data else {}


"""Seals on registry state: what our commands last wrote, keyed with the site secret.

MLflow lets anyone with access to its store set an alias, retag a version or replace an
artifact. Our commands therefore seal what they write (HMAC-SHA256 with the site secret
`registry-seal` from the keys folder): each version's bundle hash and validation record hash,
and each alias's version. A load recomputes the seals; state that no command of ours wrote is
REGISTRY_CHANGED_OUTSIDE, refused and audited by the caller.
"""

import hashlib
import hmac

from digital_contrast.canonical_json import canonical_json
from digital_contrast.keys.folder import KeysFolder, keys_folder

SECRET = "registry-seal"
VERSION_TAG = "dc_seal"
ALIAS_TAG_PREFIX = "dc_seal."


def _mac(folder: KeysFolder | None, fields: list[str]) -> str:
    secret = (folder or keys_folder()).secret(SECRET)
    return hmac.new(secret, canonical_json(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def version_seal(name: str, version: str, bundle_sha256: str, record_sha256: str,
                 folder: KeysFolder | None = None) -> str:
    return _mac(folder, ["version", name, version, bundle_sha256, record_sha256])


def alias_seal(name: str, alias: str, version: str, bundle_sha256: str, record_sha256: str,
               folder: KeysFolder | None = None) -> str:
    return _mac(folder, ["alias", name, alias, version, bundle_sha256, record_sha256])


def seal_matches(expected: str, found: str | None) -> bool:
    return found is not None and hmac.compare_digest(expected, found)

"""The keys the technical file trusts: the release keys whose public halves are committed under
`releases/keys/` of the repository checked (never DC_TRUSTED_KEYS, a site's setting). Signed
records read as evidence (verification records, validation records) are opened with these."""

from __future__ import annotations

from pathlib import Path

from digital_contrast.keys.signing import TrustedKeys, key_id, parse_public_key, release_key_files


def repository_keys(repo: Path) -> TrustedKeys:
    keys = {}
    for path in release_key_files(repo / "releases"):
        public = parse_public_key(path.read_text("utf-8"), f"release key {path.name}")
        keys[key_id(public)] = (public, f"release key {path.name}")
    return TrustedKeys(keys)

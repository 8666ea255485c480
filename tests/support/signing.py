"""The test site's keys: one signing key, trusted through DC_TRUSTED_KEYS, in a keys folder
outside every test's data folder (conftest sets both for every test)."""

import json
import tempfile
from functools import lru_cache
from pathlib import Path

from digital_contrast.keys.folder import KeysFolder
from digital_contrast.keys.signing import Signer, create_signing_key, current_signer


@lru_cache(maxsize=1)
def keys_dir() -> Path:
    """One keys folder per test process, with its signing key."""
    folder = KeysFolder(Path(tempfile.mkdtemp(prefix="dc-test-keys-")))
    create_signing_key(folder)
    return folder.path


def site_signer() -> Signer:
    return current_signer(KeysFolder(keys_dir()))


def site_key_environment() -> dict[str, str]:
    """DC_KEYS_DIR and DC_TRUSTED_KEYS of the test site (also for services run as processes)."""
    return {"DC_KEYS_DIR": str(keys_dir()),
            "DC_TRUSTED_KEYS": json.dumps([site_signer().public_line])}


def untrusted_signer() -> Signer:
    """A valid Ed25519 key that the test site does not trust."""
    folder = KeysFolder(Path(tempfile.mkdtemp(prefix="dc-untrusted-keys-")))
    return create_signing_key(folder)

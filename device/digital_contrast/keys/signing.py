"""Ed25519 signing keys (`cryptography`), the public keys a site trusts, and signed documents.

A signed document is JSON: {"format", "purpose", "payload", "signature": {"algorithm",
"key_id", "value"}}; the signature covers the canonical JSON (sorted keys, no spaces) of
format, purpose and payload, so a record signed for one purpose is never accepted for another.
The verifier looks the key id up among the keys it trusts and never takes a key from the
document itself.

Trusted keys: `DC_TRUSTED_KEYS` (the site's own signing keys, as `ed25519:<base64>` lines that
`digital-contrast signing create` prints) and the release keys whose public halves ship in
`<DC_RELEASES_DIR>/keys/*.pub` (they sign the committed reference models' records; their
private halves are held offline by the release manager and never enter the repository or CI).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from digital_contrast.canonical_json import canonical_json
from digital_contrast.config import Settings, get_settings
from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.folder import KeysFolder

FORMAT = "digital-contrast-signed/1"
ALGORITHM = "Ed25519"
PREFIX = "ed25519:"
SIGNING = "signing"
CURRENT = "current"
RELEASE_KEYS = "keys"  # under DC_RELEASES_DIR


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return canonical_json(body).encode("utf-8")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_key_line(public: Ed25519PublicKey) -> str:
    """`ed25519:<base64>`: how a public key is written in settings and .pub files."""
    return PREFIX + base64.b64encode(_raw(public)).decode("ascii")


def parse_public_key(line: str, source: str) -> Ed25519PublicKey:
    text = line.strip()
    try:
        if not text.startswith(PREFIX):
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(
            base64.b64decode(text.removeprefix(PREFIX), validate=True))
    except (ValueError, binascii.Error):
        raise KeysError("TRUSTED_KEY_INVALID", f"{source}: not an Ed25519 public key line "
                        f"('{PREFIX}' followed by 32 bytes in base64)") from None


def unverified_payload(document: Any) -> Any:
    """The payload of a signed document, or the document itself when it is not one, WITHOUT
    verifying anything: for reading what a file reports, never for a gate."""
    if isinstance(document, dict) and document.get("format") == FORMAT:
        return document.get("payload")
    return document


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())

    @property
    def public_line(self) -> str:
        return public_key_line(self.private.public_key())

    def sign_document(self, purpose: str, payload: dict[str, Any]) -> bytes:
        """The signed JSON document of `payload` for `purpose`."""
        body = {"format": FORMAT, "purpose": purpose, "payload": payload}
        signature = self.private.sign(_signed_bytes(body))
        document = body | {"signature": {"algorithm": ALGORITHM, "key_id": self.key_id,
                                         "value": base64.b64encode(signature).decode("ascii")}}
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def create_signing_key(folder: KeysFolder) -> Signer:
    """A new Ed25519 key in the keys folder, made current; the key it replaces (if any) is
    moved to signing/retired/ (rotation). Its public line must be added to DC_TRUSTED_KEYS
    before anything it signs is accepted."""
    signer = Signer(Ed25519PrivateKey.generate())
    folder.write_private(_pem(signer.private), SIGNING, f"{signer.key_id}.pem")
    previous = current_key_id(folder)
    folder.write_private(signer.key_id.encode(), SIGNING, CURRENT)
    if previous and previous != signer.key_id:
        old = folder.read_private(SIGNING, f"{previous}.pem")
        if old is not None:
            folder.write_private(old, SIGNING, "retired", f"{previous}.pem")
            folder.file(SIGNING, f"{previous}.pem").unlink()
    return signer


def current_key_id(folder: KeysFolder) -> str | None:
    raw = folder.read_private(SIGNING, CURRENT)
    return raw.decode().strip() if raw else None


def current_signer(folder: KeysFolder) -> Signer:
    """The key records are signed with; SIGNING_KEY_MISSING names the command that makes one."""
    current = current_key_id(folder)
    pem = folder.read_private(SIGNING, f"{current}.pem") if current else None
    if pem is None:
        raise KeysError("SIGNING_KEY_MISSING",
                        f"the keys folder {folder.path} holds no current signing key; create "
                        "one with 'digital-contrast signing create' and add the public key it "
                        "prints to DC_TRUSTED_KEYS (docs/regulatory.md, 'Keys and signed "
                        "records')")
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise KeysError("SIGNING_KEY_MISSING", f"signing/{current}.pem is not an Ed25519 key")
    return Signer(private)


@dataclass(frozen=True)
class TrustedKeys:
    keys: dict[str, tuple[Ed25519PublicKey, str]]  # key id -> (key, where it is trusted from)

    def open_document(self, raw: bytes, purpose: str, what: str) -> tuple[dict[str, Any], str]:
        """(payload, signer key id) of a signed document; RECORD_UNSIGNED for anything that
        is not one, SIGNER_UNTRUSTED or SIGNATURE_INVALID otherwise."""
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KeysError("SIGNATURE_INVALID", f"{what} is not JSON") from None
        signature = document.get("signature") if isinstance(document, dict) else None
        if not isinstance(signature, dict) or document.get("format") != FORMAT:
            raise KeysError("RECORD_UNSIGNED", f"{what} is not signed (a record from before "
                            "records were signed, or not made by our commands)")
        if document.get("purpose") != purpose or signature.get("algorithm") != ALGORITHM:
            raise KeysError("SIGNATURE_INVALID", f"{what} is signed as "
                            f"{document.get('purpose')!r}, not as {purpose!r}")
        trusted = self.keys.get(str(signature.get("key_id")))
        if trusted is None:
            raise KeysError("SIGNER_UNTRUSTED", f"{what} is signed by key "
                            f"{signature.get('key_id')}, which this site does not trust "
                            "(DC_TRUSTED_KEYS and the shipped release keys)")
        body = {k: document.get(k) for k in ("format", "purpose", "payload")}
        try:
            trusted[0].verify(base64.b64decode(str(signature.get("value")), validate=True),
                              _signed_bytes(body))
        except (InvalidSignature, binascii.Error, ValueError):
            raise KeysError("SIGNATURE_INVALID", f"{what}: the signature does not match its "
                            "content (changed after signing)") from None
        if not isinstance(document["payload"], dict):
            raise KeysError("SIGNATURE_INVALID", f"{what} has no payload object")
        return document["payload"], str(signature["key_id"])


def release_key_files(releases_dir: Path) -> list[Path]:
    folder = releases_dir / RELEASE_KEYS
    return sorted(folder.glob("*.pub")) if folder.is_dir() else []


def trusted_keys(settings: Settings | None = None) -> TrustedKeys:
    settings = settings or get_settings()
    keys: dict[str, tuple[Ed25519PublicKey, str]] = {}
    for index, line in enumerate(settings.trusted_keys):
        public = parse_public_key(line, f"DC_TRUSTED_KEYS[{index}]")
        keys[key_id(public)] = (public, "DC_TRUSTED_KEYS")
    for path in release_key_files(settings.releases_dir):
        public = parse_public_key(path.read_text("utf-8"), f"release key {path.name}")
        keys[key_id(public)] = (public, f"release key {path.name}")
    return TrustedKeys(keys)

"""Keys and signatures, designed once: the keys folder (outside the data folder, files 0600),
Ed25519 signing keys and their rotation, the public keys a site trusts, and site secrets for
keyed seals. See docs/regulatory.md, 'Keys and signed records'."""

from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.folder import KeysFolder, keys_folder
from digital_contrast.keys.signing import Signer, TrustedKeys, public_key_line, trusted_keys

__all__ = ["KeysError", "KeysFolder", "Signer", "TrustedKeys", "keys_folder",
           "public_key_line", "trusted_keys"]

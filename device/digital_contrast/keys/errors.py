"""The typed errors of keys and signatures."""

from digital_contrast.errors import DigitalContrastError


class KeysError(DigitalContrastError):
    """KEYS_DIR_INVALID, KEY_PERMISSIONS, SIGNING_KEY_MISSING, TRUSTED_KEY_INVALID,
    RECORD_UNSIGNED, SIGNATURE_INVALID, SIGNER_UNTRUSTED."""

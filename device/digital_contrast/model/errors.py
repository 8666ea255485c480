"""The registry's and the production gate's typed errors."""

from digital_contrast.errors import DigitalContrastError


class RegistryError(DigitalContrastError):
    """REGISTRY_UNREACHABLE, MODEL_NOT_REGISTERED, MODEL_NOT_VALIDATED, MODEL_INTEGRITY,
    REGISTRY_CHANGED_OUTSIDE, and the record's RECORD_UNSIGNED, SIGNER_UNTRUSTED and
    SIGNATURE_INVALID."""

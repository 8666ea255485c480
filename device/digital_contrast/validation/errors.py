"""The typed errors of a validation run."""

from digital_contrast.errors import DigitalContrastError


class ValidationRunError(DigitalContrastError):
    """PROTOCOL_NOT_FOUND, PROTOCOL_INVALID, PROTOCOL_CHANGED, PROTOCOL_MISMATCH (protocol and
    model are for different use cases), DATASET_INVALID (paired cases missing or unreadable),
    RUN_EXISTS (a run of that id is already filed)."""

"""The typed errors of a validation run."""

from digital_contrast.errors import DigitalContrastError


class ValidationRunError(DigitalContrastError):
    """PROTOCOL_NOT_FOUND, PROTOCOL_INVALID, PROTOCOL_CHANGED, PROTOCOL_MISMATCH (protocol and
    model are for different use cases), DATASET_INVALID (paired cases missing or unreadable, a
    cohort's pairs refused, or the cohort the model was trained on), DATASET_CHANGED (a cohort
    export that is not the one the protocol revision names), RUN_EXISTS (a run of that id is
    already filed)."""

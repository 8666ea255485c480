"""DIMSE (PS3.7, PS3.8) with pynetdicom: the C-STORE and C-ECHO listener that modalities, routers
and PACS send images to, through the same intake checks and storage as STOW-RS."""

from digital_contrast.dimse.scp import (
    ACCEPTED_TRANSFER_SYNTAXES,
    StorageSCP,
    supported_contexts,
)

__all__ = ["ACCEPTED_TRANSFER_SYNTAXES", "StorageSCP", "supported_contexts"]

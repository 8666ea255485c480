"""The network's configuration: the architecture and the input/output conventions of one set of
weights (everything inference needs to reproduce the training conditions). Plain data, no torch:
bundles and the registry read it without loading the network libraries."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.usecases.schema import Preprocessing

REFERENCE_KVP = 120.0

class NetworkConfig(FrozenSchema):
    """Architecture plus the input/output conventions of one set of weights."""

    architecture: Literal["monai.UNet"] = "monai.UNet"
    channels: tuple[int, ...] = Field((16, 32, 64, 128), min_length=2)
    strides: tuple[int, ...] = Field((2, 2, 2), min_length=1)
    num_res_units: int = Field(2, ge=0, le=4)
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Preprocessing the weights assume.
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)  # (slice, row, column)
    hu_window: tuple[float, float] = (-200.0, 600.0)  # clipped, then mapped to [-1, 1]
    detail_window: tuple[float, float] | None = None  # second input channel, same mapping
    output_scale_hu: float = Field(100.0, gt=0.0)  # network output x this = enhancement in HU
    iodine_kvp_exponent: float | None = Field(None, gt=0.0)  # output x (120/kVp)^this
    # Enhancement only where the native NCCT looks like blood or soft tissue (see tissue_gate).
    tissue_gate_hu: tuple[float, float, float, float] | None = None
    # Classes (besides background) the network also segments, in extra output channels after
    # the enhancement: a training objective that tells apart structures an L1 regression hedges
    # between (a vein and a lesion, both darker than the liver in the NCCT). Inference reads
    # the enhancement channel alone.
    segmentation_classes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides must have one entry fewer than channels")
        if any(c < 1 for c in self.channels) or any(s < 1 for s in self.strides):
            raise ValueError("channels and strides must be positive")
        for name in ("hu_window", "detail_window"):
            window = getattr(self, name)
            if window is not None and not window[0] < window[1]:
                raise ValueError(f"{name} must be (low, high) with low < high")
        gate = self.tissue_gate_hu
        if gate is not None and not gate[0] < gate[1] <= gate[2] < gate[3]:
            raise ValueError("tissue_gate_hu must be increasing: (zero below, full from, "
                             "full to, zero above)")
        if any(not 0.1 <= s <= 10.0 for s in self.spacing_mm):
            raise ValueError("spacing_mm entries must lie in [0.1, 10] mm")
        classes = self.segmentation_classes
        if len(set(classes)) != len(classes) or not all(c.strip() for c in classes):
            raise ValueError("segmentation_classes must be distinct, non-empty names")
        return self

    @property
    def in_channels(self) -> int:
        return 1 if self.detail_window is None else 2

    @property
    def out_channels(self) -> int:
        """The enhancement, then background and each segmentation class, where there are any."""
        return 1 + (len(self.segmentation_classes) + 1 if self.segmentation_classes else 0)

    @property
    def divisor(self) -> int:
        """Patch and sliding-window sizes must be multiples of this (total downsampling)."""
        return math.prod(self.strides)

    def with_preprocessing(self, preprocessing: Preprocessing) -> NetworkConfig:
        """This architecture with a use case's preprocessing (validated again)."""
        return NetworkConfig.model_validate(
            {**self.model_dump(), **preprocessing.network_fields()})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls.model_validate(data)


def output_scale_hu(config: NetworkConfig, kvp: float | None) -> float:
    """HU per network output unit at tube voltage `kvp` (required when the output is
    kVp-normalised)."""
    if config.iodine_kvp_exponent is None:
        return config.output_scale_hu
    if kvp is None or not kvp > 0:
        raise ValueError("this network's output is normalised to 120 kVp: the tube voltage "
                         "of the input is required")
    return config.output_scale_hu * (REFERENCE_KVP / kvp) ** config.iodine_kvp_exponent

"""The enhancement network: a MONAI 3-D U-Net and the preprocessing its weights assume.

Input, on a grid of `spacing_mm` (array order: slice, row, column): the NCCT in HU clipped to
`hu_window` and scaled linearly to [-1, 1]; with `detail_window`, a second channel, the same
NCCT through a narrow soft-tissue window, so that the few HU between blood and thrombus are not
lost in the first channel's scale. Output: one channel, the contrast enhancement (target phase
minus NCCT) in HU divided by `output_scale_hu` and, with `iodine_kvp_exponent`, normalised to
REFERENCE_KVP: iodine attenuates more at low tube voltage (about (120/kVp)^1.3 over 80-140
kVp), a fact the network need not learn from images that do not show the voltage.
Everything inference needs to reproduce the training conditions is in `NetworkConfig`.

Normalisation: batch norm by default. In eval mode it is a fixed affine map per channel, so an
attribution method with a constant baseline (integrated gradients from an all-air or all-zero
input) sees a well-defined network. Instance (or group) norm divides by the per-sample spread,
which is zero for a constant input: the baseline output becomes degenerate. "instance" remains
selectable for experiments.
"""

from __future__ import annotations

import io
import math
from typing import Any, Literal

import torch
from monai.networks.nets import UNet
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
        return self

    @property
    def in_channels(self) -> int:
        return 1 if self.detail_window is None else 2

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


def build_network(config: NetworkConfig) -> torch.nn.Module:
    """A freshly initialised network (seed torch first for reproducible weights)."""
    return UNet(
        spatial_dims=3, in_channels=config.in_channels, out_channels=1, channels=config.channels,
        strides=config.strides, num_res_units=config.num_res_units,
        norm=config.norm.upper(), dropout=config.dropout)


def _window(hu: torch.Tensor, window: tuple[float, float]) -> torch.Tensor:
    low, high = window
    return (hu.clamp(low, high) - low) * (2.0 / (high - low)) - 1.0


def scale_input(hu: torch.Tensor, config: NetworkConfig) -> torch.Tensor:
    """HU (..., 1, k, j, i) -> network input: each window clipped and mapped to [-1, 1], one
    channel per window."""
    windows = [config.hu_window, *([config.detail_window] if config.detail_window else [])]
    return torch.cat([_window(hu, w) for w in windows], dim=-4)


def output_scale_hu(config: NetworkConfig, kvp: float | None) -> float:
    """HU per network output unit at tube voltage `kvp` (required when the output is
    kVp-normalised)."""
    if config.iodine_kvp_exponent is None:
        return config.output_scale_hu
    if kvp is None or not kvp > 0:
        raise ValueError("this network's output is normalised to 120 kVp: the tube voltage "
                         "of the input is required")
    return config.output_scale_hu * (REFERENCE_KVP / kvp) ** config.iodine_kvp_exponent


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """The serialised weights (torch.save of contiguous CPU tensors); identical tensors give
    equal bytes whatever the memory format they were trained in."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def load_state_dict_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """Inverse of `state_dict_bytes`; tensors only, no pickled code is executed."""
    loaded: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), map_location="cpu",
                                                 weights_only=True)
    return loaded


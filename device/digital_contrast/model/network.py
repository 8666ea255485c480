"""The enhancement network: a MONAI 3-D U-Net and the preprocessing its weights assume.

Input: one channel, the NCCT in HU clipped to `hu_window` and scaled linearly to [-1, 1], on a
grid of `spacing_mm` (array order: slice, row, column). Output: one channel, the contrast
enhancement (target phase minus NCCT) in HU divided by `output_scale_hu`, so that values are
O(1). Everything inference needs to reproduce the training conditions is in `NetworkConfig`.

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
from pydantic import BaseModel, ConfigDict, Field, model_validator


class NetworkConfig(BaseModel):
    """Architecture plus the input/output conventions of one set of weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: Literal["monai.UNet"] = "monai.UNet"
    channels: tuple[int, ...] = Field((16, 32, 64, 128), min_length=2)
    strides: tuple[int, ...] = Field((2, 2, 2), min_length=1)
    num_res_units: int = Field(2, ge=0, le=4)
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Preprocessing the weights assume.
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)  # (slice, row, column)
    hu_window: tuple[float, float] = (-200.0, 600.0)  # clipped, then mapped to [-1, 1]
    output_scale_hu: float = Field(100.0, gt=0.0)  # network output x this = enhancement in HU

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides must have one entry fewer than channels")
        if any(c < 1 for c in self.channels) or any(s < 1 for s in self.strides):
            raise ValueError("channels and strides must be positive")
        if not self.hu_window[0] < self.hu_window[1]:
            raise ValueError("hu_window must be (low, high) with low < high")
        if any(not 0.1 <= s <= 10.0 for s in self.spacing_mm):
            raise ValueError("spacing_mm entries must lie in [0.1, 10] mm")
        return self

    @property
    def divisor(self) -> int:
        """Patch and sliding-window sizes must be multiples of this (total downsampling)."""
        return math.prod(self.strides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls.model_validate(data)


def build_network(config: NetworkConfig) -> torch.nn.Module:
    """A freshly initialised network (seed torch first for reproducible weights)."""
    return UNet(
        spatial_dims=3, in_channels=1, out_channels=1, channels=config.channels,
        strides=config.strides, num_res_units=config.num_res_units,
        norm=config.norm.upper(), dropout=config.dropout)


def scale_input(hu: torch.Tensor, config: NetworkConfig) -> torch.Tensor:
    """HU -> network input: clip to the window, map it linearly to [-1, 1]."""
    low, high = config.hu_window
    return (hu.clamp(low, high) - low) * (2.0 / (high - low)) - 1.0


def unscale_output(output: torch.Tensor, config: NetworkConfig) -> torch.Tensor:
    """Network output -> enhancement in HU (unclamped; inference clamps it at >= 0)."""
    return output * config.output_scale_hu


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """The serialised weights (torch.save of CPU tensors); identical tensors give equal bytes."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def load_state_dict_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """Inverse of `state_dict_bytes`; tensors only, no pickled code is executed."""
    loaded: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), map_location="cpu",
                                                 weights_only=True)
    return loaded


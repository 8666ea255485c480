"""The cascade's second stage: a 3-D segmentation of the aortic lumen and thrombus on a crop.

Stage 1 (the whole-volume enhancement network) localises the aorta and gives the lumen mask the
blood reference is read from; stage 2 sees a box around the aorta on a finer grid, with two
input channels:

- the blood-referenced NCCT: HU minus the blood reference, clipped to `blood_window_hu` and
  scaled to [-1, 1]. Thrombus differs from blood by -10 to +15 HU while blood itself varies by
  30 HU between patients: referenced, the cue is absolute;
- the NCCT through a wide window (fat, bone, air: the context the sac sits in);
- where the configuration names `regional_sigma_mm`, the blood-referenced NCCT (clipped to the
  blood window) averaged by a Gaussian of that size, through a narrow window: thrombus differs
  from blood by less than one voxel's noise, but over a region by many times the noise left
  in its mean, and organised thrombus is mottled where flowing blood is uniform.

It predicts background / arterial lumen / thrombus (softmax). The enhancement is rendered, not
regressed: the lumen's expected arterial HU at the series' kVp (`LumenContrast`, medians of the
training cases) minus the blood reference, times the lumen probability. A regression of HU
hedges between lumen and thrombus where it cannot tell them apart; a probability says so.

Plain configuration here (no torch); `build_lumen_network` and `lumen_input` load torch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from digital_contrast.frozen_schema import FrozenSchema

BACKGROUND, LUMEN, THROMBUS = 0, 1, 2
CLASSES = ("background", "lumen", "thrombus")


class LumenContrast(FrozenSchema):
    """Expected arterial lumen HU by tube voltage, and the thrombus's own enhancement (HU);
    interpolated linearly in log(kVp) between the table's voltages, held at its ends."""

    kvp: tuple[float, ...] = Field(min_length=1)
    lumen_hu: tuple[float, ...] = Field(min_length=1)
    thrombus_enhancement_hu: float = Field(0.0, ge=0.0)
    source: str  # where the table comes from (which training cases)

    @model_validator(mode="after")
    def _check(self) -> LumenContrast:
        if len(self.kvp) != len(self.lumen_hu):
            raise ValueError("kvp and lumen_hu need one entry each per voltage")
        if list(self.kvp) != sorted(set(self.kvp)) or self.kvp[0] <= 0:
            raise ValueError("kvp must be positive and strictly increasing")
        return self

    def lumen_hu_at(self, kvp: float) -> float:
        if not kvp > 0:
            raise ValueError("the tube voltage of the input is required")
        return float(np.interp(math.log(kvp), np.log(self.kvp), self.lumen_hu))


class LumenStageConfig(FrozenSchema):
    """Architecture, grid and input conventions of the second stage's weights."""

    architecture: Literal["monai.DynUNet"] = "monai.DynUNet"
    filters: tuple[int, ...] = (16, 32, 64, 128, 160)
    # Per level (z, y, x); the first level keeps full resolution. In-plane is finer than z.
    strides: tuple[tuple[int, int, int], ...] = (
        (1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    deep_supervision_heads: int = Field(2, ge=0)
    # nnU-Net uses instance norm; on 2 CPU cores it costs a third more per step and scored no
    # better than batch norm here. Bundles that do not say were trained with batch norm.
    norm: Literal["batch", "instance"] = "batch"
    spacing_mm: tuple[float, float, float] = (2.0, 1.5, 1.5)  # (z, y, x), patient-aligned
    crop_yx: tuple[int, int] = (96, 96)  # voxels in-plane: 144 mm at 1.5 mm
    z_margin_mm: float = Field(10.0, ge=0.0)  # beyond the stage-1 aorta, above and below
    blood_window_hu: tuple[float, float] = (-100.0, 100.0)  # relative to the blood reference
    wide_window_hu: tuple[float, float] = (-200.0, 600.0)
    regional_sigma_mm: float | None = Field(None, gt=0.0)  # None: no regional channel (2.0.0)
    regional_window_hu: tuple[float, float] = (-40.0, 40.0)  # relative to the blood reference
    lumen_threshold: float = Field(0.5, gt=0.0, lt=1.0)  # lumen = probability above this
    contrast: LumenContrast

    @model_validator(mode="after")
    def _check(self) -> LumenStageConfig:
        if len(self.strides) != len(self.filters):
            raise ValueError("one stride per filter level")
        if any(v % self.divisor[1 + axis] for axis, v in enumerate(self.crop_yx)):
            raise ValueError(f"crop_yx must be multiples of {self.divisor[1:]}")
        if self.deep_supervision_heads > len(self.filters) - 2:
            raise ValueError("more deep supervision heads than decoder levels")
        return self

    @property
    def divisor(self) -> tuple[int, int, int]:
        """Crop and patch sizes must be multiples of this along (z, y, x)."""
        return tuple(math.prod(s[axis] for s in self.strides) for axis in range(3))  # type: ignore[return-value]

    @property
    def in_channels(self) -> int:
        return 2 if self.regional_sigma_mm is None else 3

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def build_lumen_network(config: LumenStageConfig) -> Any:
    """A freshly initialised DynUNet (nnU-Net's architecture). With deep supervision heads it
    returns every head's output stacked in training mode, only the full-resolution one in
    eval mode."""
    from monai.networks.nets import DynUNet

    strides = [list(s) for s in config.strides]
    return DynUNet(spatial_dims=3, in_channels=config.in_channels, out_channels=len(CLASSES),
                   kernel_size=[[3, 3, 3]] * len(strides), strides=strides,
                   upsample_kernel_size=strides[1:], filters=list(config.filters),
                   norm_name=config.norm, res_block=True,
                   deep_supervision=config.deep_supervision_heads > 0,
                   deep_supr_num=max(1, config.deep_supervision_heads))


def lumen_input(hu: Any, blood_hu: Any, config: LumenStageConfig) -> Any:
    """HU (B, 1, z, y, x) and blood reference (B,) tensors -> the network's input
    (B, `config.in_channels`, z, y, x)."""
    import torch

    def window(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return (values.clamp(low, high) - low) * (2.0 / (high - low)) - 1.0

    referenced = hu - torch.as_tensor(blood_hu, dtype=hu.dtype).reshape(-1, 1, 1, 1, 1)
    channels = [window(referenced, *config.blood_window_hu), window(hu, *config.wide_window_hu)]
    if config.regional_sigma_mm is not None:
        sigma = tuple(config.regional_sigma_mm / s for s in config.spacing_mm)
        regional = gaussian_3d(referenced.clamp(*config.blood_window_hu), sigma)
        channels.append(window(regional, *config.regional_window_hu))
    return torch.cat(channels, dim=1)


def gaussian_3d(values: Any, sigma_voxels: tuple[float, ...]) -> Any:
    """Separable Gaussian of a (B, 1, z, y, x) tensor, edges replicated, 3 sigma wide."""
    import torch
    import torch.nn.functional as F

    out = values
    for axis, sigma in enumerate(sigma_voxels):
        radius = max(1, round(3.0 * sigma))
        x = torch.arange(-radius, radius + 1, dtype=values.dtype)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        pad = [0] * 6  # F.pad names the last axis first
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), (kernel / kernel.sum()).reshape(shape))
    return out

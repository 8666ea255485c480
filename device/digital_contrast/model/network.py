"""The enhancement network: a MONAI 3-D U-Net and the preprocessing its weights assume.

Input, on a grid of `spacing_mm` (array order: slice, row, column): the NCCT in HU clipped to
`hu_window` and scaled linearly to [-1, 1]; with `detail_window`, a second channel, the same
NCCT through a narrow soft-tissue window, so that the few HU between blood and thrombus are not
lost in the first channel's scale. Output: one channel, the contrast enhancement (target phase
minus NCCT) in HU divided by `output_scale_hu` and, with `iodine_kvp_exponent`, normalised to
REFERENCE_KVP: iodine attenuates more at low tube voltage (about (120/kVp)^1.3 over 80-140
kVp), a fact the network need not learn from images that do not show the voltage. With
`segmentation_classes`, the logits of background and each class follow in further channels,
trained beside the enhancement; `enhancement_only` gives inference the first channel alone.
Everything inference needs to reproduce the training conditions is in `NetworkConfig`.

Normalisation: batch norm by default. In eval mode it is a fixed affine map per channel, so an
attribution method with a constant baseline (integrated gradients from an all-air or all-zero
input) sees a well-defined network. Instance (or group) norm divides by the per-sample spread,
which is zero for a constant input: the baseline output becomes degenerate. "instance" remains
selectable for experiments.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import UNet

from digital_contrast.model.network_config import NetworkConfig


def build_network(config: NetworkConfig) -> torch.nn.Module:
    """A freshly initialised network (seed torch first for reproducible weights)."""
    return UNet(
        spatial_dims=3, in_channels=config.in_channels, out_channels=config.out_channels,
        channels=config.channels, strides=config.strides, num_res_units=config.num_res_units,
        norm=config.norm.upper(), dropout=config.dropout)


class _EnhancementChannel(torch.nn.Module):
    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)[:, :1]


def enhancement_only(network: torch.nn.Module, config: NetworkConfig) -> torch.nn.Module:
    """The network as inference uses it: one output channel, the enhancement."""
    if not config.segmentation_classes:
        return network
    return _EnhancementChannel(network).train(network.training)


def _window(hu: torch.Tensor, window: tuple[float, float]) -> torch.Tensor:
    low, high = window
    return (hu.clamp(low, high) - low) * (2.0 / (high - low)) - 1.0


def scale_input(hu: torch.Tensor, config: NetworkConfig) -> torch.Tensor:
    """HU (..., 1, k, j, i) -> network input: each window clipped and mapped to [-1, 1], one
    channel per window."""
    windows = [config.hu_window, *([config.detail_window] if config.detail_window else [])]
    return torch.cat([_window(hu, w) for w in windows], dim=-4)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _identity(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


def save_checkpoint(path: Path, value: Any) -> None:
    """A training checkpoint, replaced whole or not at all: an interrupted save leaves the
    previous one."""
    tmp = path.with_suffix(".tmp")
    torch.save(value, tmp)
    tmp.replace(path)


def state_dict_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """The serialised weights (torch.save of contiguous CPU tensors); identical tensors give
    equal bytes whatever the memory format they were trained in. A tensor registered under
    several names (DynUNet keeps its skip layers twice) is stored once."""
    copies: dict[tuple[Any, ...], torch.Tensor] = {}
    for value in state_dict.values():
        copies.setdefault(_identity(value), value.detach().cpu().contiguous())
    buffer = io.BytesIO()
    torch.save({k: copies[_identity(v)] for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def load_state_dict_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """Inverse of `state_dict_bytes`; tensors only, no pickled code is executed."""
    loaded: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), map_location="cpu",
                                                 weights_only=True)
    return loaded


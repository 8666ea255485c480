"""Attribution of a synthesized scalar to the input voxels (Captum), on a crop around the aorta.

The scalar is the mean synthesized enhancement (HU) inside a target region: by default the
synthesized aortic lumen, or a caller's region (a mask on the scan's grid, or a box in patient
coordinates). Attributions are to the NCCT in HU on the working grid; the windowing inside the
model is part of the function explained, so voxels outside both windows get none.

Integrated Gradients starts from a blurred copy of the input: a zero or constant baseline is not
a neutral image for a network with normalisation layers and HU windows.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, Occlusion, Saliency
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from scipy import ndimage

from digital_contrast.config import get_settings
from digital_contrast.explain.region import (
    Box,
    aortic_component,
    bounding_box,
    centred_box,
    predicted_lumen,
)
from digital_contrast.imaging.resampling import to_native_grid
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.synthesize import WorkingPrediction
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.network import scale_input
from digital_contrast.model.network_config import NetworkConfig


class Method(StrEnum):
    INTEGRATED_GRADIENTS = "integrated-gradients"
    SALIENCY = "saliency"
    OCCLUSION = "occlusion"


class AttributionError(ValueError):
    """A request that cannot be explained as asked (stable `code`)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class AttributionSettings:
    crop: tuple[int, int, int] = (128, 128, 128)  # working voxels around the aorta
    ig_steps: int = 32
    internal_batch_size: int = 2  # bounds IG's memory: this many 128^3 passes at once
    baseline_sigma_mm: float = 8.0  # blur of the IG / occlusion baseline
    occlusion_window: int = 16  # working voxels per side of an occluded block (and stride)
    occlusion_batch: int = 4


@dataclass(frozen=True, eq=False)
class Attribution:
    method: Method
    values: np.ndarray  # (k, j, i) on `crop` of the working grid; signed, per HU of input
    crop: Box
    target_voxels: int  # working voxels the explained mean ran over
    target_hu: float  # the explained scalar: mean synthesized enhancement there (HU)
    convergence_delta: float | None  # IG only: |sum(attr) - (f(x) - f(baseline))|

    def to_dict(self) -> dict[str, object]:
        """What a result record says of the attribution (not the values)."""
        return {"method": self.method.value, "target_voxels": self.target_voxels,
                "target_hu": round(self.target_hu, 3),
                "convergence_delta": (None if self.convergence_delta is None
                                      else round(self.convergence_delta, 6))}

    def to_native(self, prediction: WorkingPrediction, volume: Volume) -> np.ndarray:
        """|attribution| on the volume's own grid, zero outside the crop."""
        full = np.zeros(tuple(prediction.image.shape[1:]), dtype=np.float32)
        full[self.crop.slices] = np.abs(self.values)
        grid = MetaTensor(torch.from_numpy(full[None]), affine=prediction.image.affine)
        with torch.inference_mode():
            native = to_native_grid(grid, volume.affine, volume.shape)
        return np.maximum(native, 0.0).astype(np.float32, copy=False)


def box_mask_mm(prediction: WorkingPrediction, low_mm: tuple[float, float, float],
                high_mm: tuple[float, float, float]) -> np.ndarray:
    """Working-grid voxels whose centre lies in the LPS box [low, high] (mm)."""
    shape = tuple(prediction.image.shape[1:])
    affine = np.asarray(prediction.image.affine, dtype=np.float64)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = grid.reshape(-1, 3) @ affine[:3, :3].T + affine[:3, 3]
    low, high = np.minimum(low_mm, high_mm), np.maximum(low_mm, high_mm)
    return np.all((world >= low) & (world <= high), axis=1).reshape(shape)


def native_mask_to_working(mask: np.ndarray, volume: Volume,
                           prediction: WorkingPrediction) -> np.ndarray:
    """A boolean mask on the scan's grid -> the working grid (nearest neighbour)."""
    if mask.shape != volume.shape:
        raise AttributionError("EXPLAIN_REGION_INVALID",
                               f"region mask shape {mask.shape} differs from the series "
                               f"{volume.shape}")
    source = MetaTensor(torch.from_numpy(mask.astype(np.float32)[None]),
                        affine=torch.from_numpy(volume.affine))
    out = SpatialResample(mode="nearest", padding_mode="zeros")(
        source, dst_affine=prediction.image.affine, spatial_size=prediction.image.shape[1:])
    return out.as_tensor()[0].numpy() > 0.5


def _crop_around(target: np.ndarray, lumen: np.ndarray, size: tuple[int, int, int]) -> Box:
    anchor = bounding_box(target) or bounding_box(lumen)
    shape = target.shape
    if anchor is None:
        centre = tuple(n // 2 for n in shape)
    else:
        centre = tuple((a + b) // 2 for a, b in zip(anchor.start, anchor.stop, strict=True))
    return centred_box(centre, size, shape)  # type: ignore[arg-type]


def _padded(x: torch.Tensor, divisor: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Replicate-pad (1, 1, k, j, i) up to multiples of `divisor`; returns the pad amounts."""
    extra = [(-n) % divisor for n in x.shape[2:]]
    pad = (0, extra[2], 0, extra[1], 0, extra[0])
    return (F.pad(x, pad, mode="replicate") if any(extra) else x), tuple(extra)


def attribute(prediction: WorkingPrediction, network: torch.nn.Module, config: NetworkConfig,
              method: Method | str = Method.INTEGRATED_GRADIENTS, *,
              target: np.ndarray | None = None,
              settings: AttributionSettings | None = None) -> Attribution:
    """Attribute the mean synthesized enhancement in `target` (working-grid mask; default the
    synthesized aortic lumen) to the NCCT voxels of a crop around it."""
    method = Method(method)
    settings = settings or AttributionSettings()
    lumen = aortic_component(predicted_lumen(prediction))
    target = lumen if target is None else target
    if target.shape != lumen.shape:
        raise AttributionError("EXPLAIN_REGION_INVALID", "target mask is not on the working grid")
    crop = _crop_around(target, lumen, settings.crop)
    mask_np = target[crop.slices]
    if not mask_np.any():
        raise AttributionError("EXPLAIN_REGION_EMPTY",
                               "no synthesized lumen (or no voxel of the given region) in the "
                               "explained crop: there is no enhancement to attribute")
    image = prediction.image.as_tensor()[0][crop.slices][None, None].float()
    x, _ = _padded(image, config.divisor)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[(0, 0, *[slice(0, n) for n in crop.shape])] = torch.from_numpy(mask_np)
    count = int(mask.sum())

    def explained(hu: torch.Tensor) -> torch.Tensor:
        out = network(scale_input(hu, config))
        return (out * mask).flatten(1).sum(dim=1) * (prediction.hu_per_unit / count)

    sigma = [settings.baseline_sigma_mm / s for s in config.spacing_mm]
    baseline = torch.from_numpy(ndimage.gaussian_filter(x[0, 0].numpy(), sigma,
                                                        mode="nearest"))[None, None]
    delta = None
    with deterministic(0, get_settings().inference_threads), torch.enable_grad():
        target_hu = float(explained(x).detach()[0])
        if method is Method.INTEGRATED_GRADIENTS:
            values, deltas = IntegratedGradients(explained).attribute(
                x, baselines=baseline, n_steps=settings.ig_steps,
                internal_batch_size=settings.internal_batch_size, return_convergence_delta=True)
            delta = float(deltas.abs().max())
        elif method is Method.SALIENCY:
            values = Saliency(explained).attribute(x.clone().requires_grad_(True), abs=True)
        else:
            window = (1, *(settings.occlusion_window,) * 3)
            values = Occlusion(explained).attribute(
                x, sliding_window_shapes=window, strides=window, baselines=baseline,
                perturbations_per_eval=settings.occlusion_batch)
    values = values.detach()[(0, 0, *[slice(0, n) for n in crop.shape])].numpy()
    if not np.all(np.isfinite(values)) or math.isnan(target_hu):
        raise AttributionError("EXPLAIN_FAILED", "the attribution is not finite")
    return Attribution(method=method, values=values.astype(np.float32), crop=crop,
                       target_voxels=count, target_hu=target_hu, convergence_delta=delta)


"""Voxel-wise uncertainty of the synthesized enhancement from test-time augmentation (TTA).

Each sample perturbs the working-grid NCCT the way scans differ (a shift by whole voxels, a
small HU gain and offset, extra noise), runs the locked network on a box around the aorta, and
undoes the shift. The map is the standard deviation of the enhancement over the samples (HU);
the score is the fraction of the synthesized lumen where it exceeds a calibrated threshold.
No left-right flips: the anatomy is lateralised and the model never saw a flipped case.
"""

from dataclasses import dataclass

import numpy as np
import torch
from monai.data import MetaTensor

from digital_contrast.config import get_settings
from digital_contrast.explain.region import Box, aortic_component, bounding_box, predicted_lumen
from digital_contrast.imaging.resampling import to_native_grid
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.synthesize import ROI_SIZE, WorkingPrediction, run_network
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.explain_evidence import TTASettings
from digital_contrast.model.network_config import NetworkConfig

REGION_MARGIN = 4  # working voxels around the synthesized aorta that the map covers
CONTEXT_MARGIN = 8  # further voxels the network sees, so that the map is not edge effects


@dataclass(frozen=True, eq=False)
class UncertaintyMap:
    """TTA spread on the working grid, inside `region` (zero elsewhere), and the lumen it
    was scored over."""

    sd_hu: np.ndarray  # (k, j, i) working grid, HU at the source tube voltage
    lumen: np.ndarray  # bool, the synthesized aortic lumen (working grid)
    region: Box | None  # None when nothing was synthesized as lumen
    settings: TTASettings

    def lumen_fraction_above(self, threshold_hu: float) -> float:
        """Fraction of the synthesized aortic lumen whose spread exceeds `threshold_hu`; 1.0
        when there is no lumen at all (nothing to be confident about)."""
        count = int(self.lumen.sum())
        return float((self.sd_hu[self.lumen] > threshold_hu).sum() / count) if count else 1.0

    def to_native(self, prediction: WorkingPrediction, volume: Volume) -> np.ndarray:
        """The map on the volume's own grid (float32 HU)."""
        grid = MetaTensor(torch.from_numpy(self.sd_hu[None]), affine=prediction.image.affine)
        with torch.inference_mode():
            native = to_native_grid(grid, volume.affine, volume.shape)
        return np.maximum(native, 0.0).astype(np.float32, copy=False)


def _roi(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The locked ROI, shrunk to the box (rounded up to 16) so small boxes are not padded."""
    return tuple(min(r, -(-s // 16) * 16) for r, s in zip(ROI_SIZE, shape, strict=True))  # type: ignore[return-value]


def _perturbations(settings: TTASettings) -> list[tuple[tuple[int, int, int], float, float]]:
    """(shift, gain, offset) per sample; the first sample is the unperturbed input."""
    rng = np.random.default_rng(settings.seed)
    draws = [((0, 0, 0), 1.0, 0.0)]
    m = settings.max_shift_voxels
    for _ in range(settings.samples - 1):
        shift = tuple(int(v) for v in rng.integers(-m, m + 1, size=3))
        draws.append((shift, 1.0 + float(rng.normal(0.0, settings.gain_sd)),  # type: ignore[arg-type]
                      float(rng.normal(0.0, settings.offset_sd_hu))))
    return draws


def estimate_uncertainty(prediction: WorkingPrediction, network: torch.nn.Module,
                         config: NetworkConfig,
                         settings: TTASettings | None = None) -> UncertaintyMap:
    """TTA over a box around the synthesized aorta (the whole grid when there is none)."""
    settings = settings or TTASettings()
    image = prediction.image.as_tensor()[0]
    lumen = aortic_component(predicted_lumen(prediction))
    found = bounding_box(lumen)
    shape = tuple(image.shape)
    region = found.grown(REGION_MARGIN, shape) if found else None
    context = (region or _whole(shape)).grown(CONTEXT_MARGIN, shape)
    crop = image[context.slices]
    generator = torch.Generator().manual_seed(settings.seed)
    outputs = []
    with deterministic(settings.seed, get_settings().inference_threads), torch.inference_mode():
        for shift, gain, offset in _perturbations(settings):
            noisy = crop * gain + offset
            if settings.noise_sd_hu and outputs:
                noisy = noisy + torch.randn(crop.shape, generator=generator) * settings.noise_sd_hu
            shifted = torch.roll(noisy, shifts=shift, dims=(0, 1, 2))
            output = run_network(network, shifted[None, None], config,
                                 _roi(tuple(crop.shape)))[0, 0]
            back = torch.roll(output, shifts=tuple(-s for s in shift), dims=(0, 1, 2))
            outputs.append(back.clamp(min=0.0) * prediction.hu_per_unit)
    spread = torch.stack(outputs).std(dim=0).numpy()
    sd = np.zeros(shape, dtype=np.float32)
    inner = region or _whole(shape)
    offsets = [a - c for a, c in zip(inner.start, context.start, strict=True)]
    sd[inner.slices] = spread[tuple(slice(o, o + n) for o, n in zip(offsets, inner.shape,
                                                                     strict=True))]
    return UncertaintyMap(sd_hu=sd, lumen=lumen, region=region, settings=settings)


def _whole(shape: tuple[int, ...]) -> Box:
    return Box((0, 0, 0), tuple(shape))  # type: ignore[arg-type]

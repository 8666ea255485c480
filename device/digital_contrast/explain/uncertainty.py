"""Voxel-wise uncertainty of the synthesized lumen from test-time augmentation (TTA) of the
cascade's second stage, the one that decides lumen from thrombus; for a bundle of the first
stage alone, of the synthesized enhancement from TTA of that stage.

Each sample perturbs the crop the way scans differ (a shift by whole voxels, a small HU gain,
an offset that moves the image against its blood reference, extra noise), runs stage 2 and
undoes the shift. A voxel's spread is the standard deviation of its rendered enhancement over
the predictive distribution: the variance between samples plus, within each, the variance of a
lumen/not-lumen call made with the network's probability p, (lumen HU - blood)^2 p (1 - p),
taken before the connectivity rule drops detached lumen from the rendering, so that a network
that cannot tell thrombus from blood and says so with p near 0.5 is uncertain even when every
sample says the same. The score is the fraction of the scored region above a calibrated
threshold: the synthesized lumen and the voxels connected to it that the samples give a mean
lumen probability of at least POSSIBLE_LUMEN (a sac the network cannot call lumen or thrombus
is uncertain whichever way it was rendered), less its edge (one crop voxel, where any
rendering is partial volume). No flips: the crop is patient-aligned and the anatomy is
lateralised.

Without a second stage the same perturbations are applied to stage 1's working-grid input and
the whole volume is run again per sample; the spread is the standard deviation between samples
(a regression has no call of its own to doubt), scored over the enhanced tissue: voxels the
unperturbed sample enhances by at least ENHANCED_TISSUE_HU, less their edge.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from digital_contrast.config import get_settings
from digital_contrast.imaging.resampling import resample
from digital_contrast.imaging.volume import Volume
from digital_contrast.inference.cascade import Cascade
from digital_contrast.inference.lumen_step import keep_connected, lumen_probabilities
from digital_contrast.inference.synthesize import WorkingPrediction, run_network
from digital_contrast.model.crop_grid import CropGrid, from_crop, native_box
from digital_contrast.model.determinism import deterministic
from digital_contrast.model.explain_evidence import TTASettings
from digital_contrast.model.lumen_stage import LUMEN

POSSIBLE_LUMEN = 0.2  # mean lumen probability from which a voxel is scored
ENHANCED_TISSUE_HU = 10.0  # stage 1 alone: enhancement from which a voxel is scored
LUMEN_REGION = "synthesized or possible lumen"
TISSUE_REGION = "enhanced tissue"


@dataclass(frozen=True, eq=False)
class UncertaintyMap:
    """Spread on stage 2's crop grid (`grid`) or, for a bundle of stage 1 alone, on its working
    grid (`working_affine`), and the region it was scored over."""

    sd_hu: np.ndarray  # (z, y, x), HU at the source tube voltage
    region: np.ndarray  # bool, the scored region's interior
    settings: TTASettings
    region_name: str = LUMEN_REGION
    grid: CropGrid | None = None
    working_affine: np.ndarray | None = None

    def fraction_above(self, threshold_hu: float) -> float:
        """Fraction of the scored region whose spread exceeds `threshold_hu`; 1.0 when the
        region is empty (nothing to be confident about)."""
        count = int(self.region.sum())
        return float((self.sd_hu[self.region] > threshold_hu).sum() / count) if count else 1.0

    def to_native(self, volume: Volume) -> np.ndarray:
        """The map on the volume's own grid (float32 HU, zero outside the crop)."""
        if self.grid is None:
            native = resample(torch.from_numpy(self.sd_hu), self.working_affine, volume.affine,
                              volume.shape)
            return np.maximum(native, 0.0, out=native)
        native = np.zeros(volume.shape, dtype=np.float32)
        box = native_box(self.grid, volume.affine, volume.shape)
        if box is not None:
            native[box] = np.maximum(from_crop(self.sd_hu, self.grid, volume.affine, box), 0.0)
        return native


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


def _samples(image: torch.Tensor, settings: TTASettings, dims: tuple[int, int, int]
             ) -> Iterator[tuple[tuple[int, int, int], torch.Tensor]]:
    """Each sample's shift and its perturbed image, shifted along `dims` (the first sample
    unperturbed). Callers hold `deterministic` and inference mode."""
    generator = torch.Generator().manual_seed(settings.seed)
    for n, (shift, gain, offset) in enumerate(_perturbations(settings)):
        noisy = image * gain + offset
        if n:
            noisy = noisy + torch.randn(image.shape, generator=generator) * settings.noise_sd_hu
        yield shift, torch.roll(noisy, shifts=shift, dims=dims)


def estimate_uncertainty(prediction: WorkingPrediction, cascade: Cascade,
                         settings: TTASettings | None = None) -> UncertaintyMap:
    settings = settings or TTASettings()
    lumen = prediction.lumen
    config = cascade.lumen_config
    if lumen is None or cascade.lumen_network is None or config is None:
        return _first_stage_uncertainty(prediction, cascade, settings)
    crop = torch.from_numpy(lumen.image)
    mean = np.zeros(crop.shape, dtype=np.float64)
    square = np.zeros(crop.shape, dtype=np.float64)
    within = np.zeros(crop.shape, dtype=np.float64)
    possible = np.zeros(crop.shape, dtype=np.float64)
    with deterministic(settings.seed, get_settings().inference_threads), torch.inference_mode():
        for shift, shifted in _samples(crop, settings, dims=(0, 1, 2)):
            # The offset moves the image against the blood reference: its estimation error.
            raw = np.roll(lumen_probabilities(cascade.lumen_network, shifted, lumen.blood.hu,
                                              config), tuple(-s for s in shift), axis=(1, 2, 3))
            enhancement = lumen.enhancement(keep_connected(raw, config.lumen_threshold))
            mean += enhancement
            square += enhancement.astype(np.float64) ** 2
            # The network's own doubt, wherever it is, even where the rendering dropped it.
            within += lumen.lumen_enhancement_hu ** 2 * raw[LUMEN] * (1.0 - raw[LUMEN])
            possible += raw[LUMEN]
    count = settings.samples
    between = np.maximum(square / count - (mean / count) ** 2, 0.0)
    sd = np.sqrt(between + within / count).astype(np.float32)
    return UncertaintyMap(sd_hu=sd, region=scored_region(lumen.lumen, possible / count),
                          settings=settings, grid=lumen.grid)


def _first_stage_uncertainty(prediction: WorkingPrediction, cascade: Cascade,
                             settings: TTASettings) -> UncertaintyMap:
    image = prediction.image.as_tensor()[None]  # (1, 1, k, j, i) HU
    mean = np.zeros(image.shape[2:], dtype=np.float64)
    square = np.zeros(image.shape[2:], dtype=np.float64)
    first = None
    with deterministic(settings.seed, get_settings().inference_threads), torch.inference_mode():
        for shift, shifted in _samples(image, settings, dims=(2, 3, 4)):
            output = run_network(cascade.network, shifted, cascade.network_config)
            enhancement = np.roll(output[0, 0].numpy() * prediction.hu_per_unit,
                                  tuple(-s for s in shift), axis=(0, 1, 2))
            first = enhancement if first is None else first
            mean += enhancement
            square += enhancement.astype(np.float64) ** 2
    count = settings.samples
    sd = np.sqrt(np.maximum(square / count - (mean / count) ** 2, 0.0)).astype(np.float32)
    region = ndimage.binary_erosion(first >= ENHANCED_TISSUE_HU)
    return UncertaintyMap(sd_hu=sd, region=region, settings=settings, region_name=TISSUE_REGION,
                          working_affine=np.asarray(prediction.image.affine, dtype=np.float64))


def scored_region(lumen: np.ndarray, possible: np.ndarray) -> np.ndarray:
    """The synthesized lumen and the possible lumen (mean probability >= POSSIBLE_LUMEN)
    connected to it, less their edge."""
    candidate = lumen | (possible >= POSSIBLE_LUMEN)
    components, _ = ndimage.label(candidate)
    touching = np.unique(components[lumen])
    return ndimage.binary_erosion(np.isin(components, touching[touching > 0]))

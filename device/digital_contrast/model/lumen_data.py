"""Training and shift-set cases of the second stage, and their crops, cached on disk.

Training cases come from the phantom's training seeds; half of them are redrawn from ranges
wider than the phantom publishes (`TRAINING_RANGES`: anaemic and polycythaemic blood, thrombus
from darker to brighter than blood, more and less noise, sharper and softer kernels, 1-3 mm
slices, all four tube voltages, sacs bulging further), so the model does not learn the
validation ranges' edges. The shift set (`SHIFT_RANGES`) reaches beyond the training ranges and
is only ever evaluated. Everything is a pure function of the seed.

A crop is the case's NCCT on the stage's patient-aligned grid around the true arterial lumen,
with the class of each voxel (background, lumen, thrombus: the largest anti-aliased share) and
the blood reference read from the noisy NCCT as inference reads it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digital_contrast.canonical_json import canonical_json
from digital_contrast.model.blood_reference import blood_reference
from digital_contrast.model.crop_grid import CropGrid, centre_xy, to_crop, world_z_range
from digital_contrast.model.lumen_stage import LUMEN, THROMBUS
from digital_contrast.phantom.case import PhantomCase, render_case
from digital_contrast.phantom.labels import ARTERIAL_LUMEN_LABELS, Label
from digital_contrast.phantom.parameters import PhantomParameters, rng_stream
from digital_contrast.phantom.sampling import sample_parameters

Range = tuple[float, float]
# Training: a case is widened with this probability, each listed field drawn uniformly.
WIDEN_FRACTION = 0.5
TRAINING_RANGES: dict[str, Range] = {
    "blood_hu": (20.0, 60.0), "thrombus_minus_blood_hu": (-12.0, 18.0),
    "noise_sd_hu": (6.0, 34.0), "noise_sigma_px": (0.6, 1.6), "psf_sigma_mm": (0.4, 1.0),
    "pixel_spacing_mm": (0.6, 0.95), "aneurysm_shift_x_mm": (-10.0, 18.0),
    "aneurysm_peak_fraction": (0.3, 0.7), "lordosis_mm": (0.0, 15.0),
    "thrombus_irregularity_mm": (0.0, 3.0)}
TRAINING_KVP = (80.0, 100.0, 120.0, 140.0)
TRAINING_SLICES_MM = (1.0, 1.5, 2.0, 2.5, 3.0)
# Shift set: each field from the two bands just beyond its training range.
SHIFT_RANGES: dict[str, tuple[Range, Range]] = {
    "blood_hu": ((15.0, 20.0), (60.0, 68.0)),
    "thrombus_minus_blood_hu": ((-18.0, -12.0), (18.0, 23.0)),
    "noise_sd_hu": ((4.0, 6.0), (34.0, 42.0)),
    "psf_sigma_mm": ((0.25, 0.4), (1.0, 1.3)),
    "aneurysm_shift_x_mm": ((-20.0, -10.0), (18.0, 24.0))}
SHIFT_SLICES_MM = (0.75, 4.0)
CACHE_FORMAT = "lumen-crop/1"


def _slices(base: PhantomParameters, thickness: float) -> dict[str, Any]:
    """Overrides that re-slice `base`'s scan range at `thickness` (contiguous slices)."""
    grid = base.acquisition
    extent = (grid.n_slices - 1) * grid.slice_spacing_mm
    return {"slice_thickness_mm": thickness, "slice_spacing_mm": thickness,
            "n_slices": max(8, math.ceil(extent / thickness) + 1)}


def training_parameters(seed: int, size: str = "small") -> PhantomParameters:
    """The phantom case of `seed`, widened (with probability WIDEN_FRACTION) to the training
    ranges."""
    base = sample_parameters(seed, size)
    r = rng_stream(seed, "training/widen")
    if r.random() >= WIDEN_FRACTION:
        return base
    overrides: dict[str, Any] = {name: float(r.uniform(*span))
                                 for name, span in TRAINING_RANGES.items()}
    overrides["anaemic"] = overrides["blood_hu"] <= 35.0
    overrides["kvp"] = float(r.choice(TRAINING_KVP))
    overrides.update(_slices(base, float(r.choice(TRAINING_SLICES_MM))))
    if size != "small":
        overrides.pop("pixel_spacing_mm")  # the clinical field of view must hold the body
    return sample_parameters(seed, size, **overrides)


def shift_parameters(seed: int, size: str = "small") -> PhantomParameters:
    """A shift-set case: every SHIFT_RANGES field and the slice thickness beyond training."""
    base = sample_parameters(seed, size)
    r = rng_stream(seed, "shift")
    overrides: dict[str, Any] = {name: float(r.uniform(*bands[int(r.integers(0, 2))]))
                                 for name, bands in SHIFT_RANGES.items()}
    overrides["anaemic"] = overrides["blood_hu"] <= 35.0
    overrides.update(_slices(base, float(r.choice(SHIFT_SLICES_MM))))
    return sample_parameters(seed, size, **overrides)


@dataclass(frozen=True, eq=False)
class LumenCrop:
    """One case on the stage grid: (z, y, x) arrays and what inference would know of it."""

    image: np.ndarray  # float32 NCCT HU
    target: np.ndarray  # uint8 class per voxel
    blood_hu: float  # blood reference read from the noisy NCCT and the true aortic lumen
    kvp: float
    lumen_hu: float  # the case's true arterial lumen HU (for the contrast table)
    seed: int

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, image=self.image.astype(np.float16), target=self.target,
                 scalars=np.array([self.blood_hu, self.kvp, self.lumen_hu, self.seed]))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LumenCrop:
        with np.load(path) as data:
            blood, kvp, lumen, seed = (float(v) for v in data["scalars"])
            return cls(data["image"].astype(np.float32), data["target"], blood, kvp, lumen,
                       int(seed))


def arterial_lumen(labels: np.ndarray) -> np.ndarray:
    return np.isin(labels, [int(v) for v in ARTERIAL_LUMEN_LABELS])


def case_crop(case: PhantomCase, spacing_mm: tuple[float, float, float],
              size_yx: tuple[int, int], z_margin_mm: float) -> LumenCrop:
    """The crop of `case` centred on its true arterial lumen."""
    lumen = arterial_lumen(case.labels)
    centre, z_range = centre_xy(lumen, case.affine), world_z_range(lumen, case.affine)
    if centre is None or z_range is None:
        raise ValueError(f"phantom case {case.parameters.seed} has no arterial lumen")
    grid = CropGrid.around(centre, (z_range[0] - z_margin_mm, z_range[1] + z_margin_mm),
                           spacing_mm, size_yx)
    shares = [to_crop(mask.astype(np.float32), case.affine, grid, padding_value=0.0)
              for mask in (lumen, case.labels == Label.THROMBUS)]
    background = 1.0 - shares[0] - shares[1]
    target = np.argmax(np.stack([background, *shares]), axis=0).astype(np.uint8)
    assert (LUMEN, THROMBUS) == (1, 2)  # the stacking order above
    blood = blood_reference(case.ncct, case.labels == Label.AORTA_LUMEN, case.affine)
    return LumenCrop(image=to_crop(case.ncct, case.affine, grid), target=target,
                     blood_hu=blood.hu, kvp=float(case.parameters.scanner.kvp),
                     lumen_hu=float(case.parameters.intensities.arterial_lumen_hu),
                     seed=case.parameters.seed)


def cache_key(parameters: PhantomParameters, spacing_mm: tuple[float, float, float],
              size_yx: tuple[int, int], z_margin_mm: float) -> str:
    """Names a cached crop by everything that makes it."""
    identity = {"format": CACHE_FORMAT, "parameters": parameters.to_dict(),
                "spacing_mm": list(spacing_mm), "size_yx": list(size_yx),
                "z_margin_mm": z_margin_mm}
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def cached_crop(parameters: PhantomParameters, folder: Path,
                spacing_mm: tuple[float, float, float], size_yx: tuple[int, int],
                z_margin_mm: float) -> LumenCrop:
    """The crop of a case, rendered once: later calls read `folder`. The first call returns
    what later ones will, the stored values."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{parameters.seed}-"
                     f"{cache_key(parameters, spacing_mm, size_yx, z_margin_mm)}.npz")
    if path.exists():
        return LumenCrop.load(path)
    case_crop(render_case(parameters), spacing_mm, size_yx, z_margin_mm).save(path)
    return LumenCrop.load(path)  # as stored (float16 HU), whether cached or not


def contrast_table(cases: list[Mapping[str, float]]) -> dict[float, float]:
    """Median true arterial lumen HU per tube voltage over training cases ({kvp, lumen_hu})."""
    by_kvp: dict[float, list[float]] = {}
    for case in cases:
        by_kvp.setdefault(float(case["kvp"]), []).append(float(case["lumen_hu"]))
    return {kvp: round(float(np.median(v)), 1) for kvp, v in sorted(by_kvp.items())}

"""Training pairs from a repository cohort: the batch manifest of a cohort of native + contrast
pairs (`repository export` of a `--pairs` cohort); each case's native series in, the enhancement
of its reference out (the contrast series resampled onto the native grid, minus the native).

Real pairs are not the phantom: no labels and no noiseless image. The target is the difference
of two noisy acquisitions of a patient who may have moved between them (nothing is registered
here: a pair must share its frame of reference, or it is refused), and the loss weights come
from the target itself: patch centres favour voxels it enhances by ENHANCING_HU or more
(vessels, enhancing organs), and voxels enhanced by LUMEN_HU or more weigh as the phantom's
arterial lumen does. Voxels the reference does not cover weigh nothing.

Before any pixel is read, every folder must hash to the instance set its case names and every
pair must share its frame of reference and name its tube voltage: the data of a run is exactly
the manifest's, and a bad case is named before a training starts.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from monai.data import CacheDataset, MetaTensor
from monai.transforms import Compose, DeleteItemsd, MapTransform, Spacingd, SpatialPadd

from digital_contrast.batch_manifest import Manifest, ManifestCase, case_files, folder_instance_set
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.errors import ImagingError
from digital_contrast.imaging.resampling import anti_alias, resample_onto
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import AIR_HU

from .data import IMAGE, KVP, LOSS_WEIGHT, SAMPLE_WEIGHT, TARGET, ScaleHUd, patch_transforms
from .network_config import NetworkConfig

GENERATOR = "digital_contrast.repository"
TARGET_DEFINITION = ("reference(phase) resampled onto the ncct grid - ncct, HU (two noisy "
                     "acquisitions, not registered)")
ENHANCING_HU = 100.0  # target above: where patch centres are drawn
LUMEN_HU = 150.0  # target above: weighted as the phantom's arterial lumen
NCCT, REFERENCE, COVERAGE, CASE = "ncct_folder", "reference_folder", "coverage", "case_id"


class CohortDataError(DigitalContrastError):
    """TRAINING_COHORT_INVALID (a case without its folders, a reference of another phase, a
    manifest of another use case), TRAINING_COHORT_CHANGED (a folder that does not hash to
    its instance set), TRAINING_COHORT_UNSUPPORTED (a configuration that needs phantom
    labels), TRAINING_PAIR_UNREGISTERED (a pair without one frame of reference),
    TRAINING_COHORT_UNREADABLE (a series the product's reader refuses)."""


def _folder(manifest: Manifest, case: ManifestCase, folder: str | None, what: str) -> Path:
    if folder is None:
        raise CohortDataError("TRAINING_COHORT_INVALID", f"case {case.case_id}: its {what} names "
                                                         "no folder (export with --files)")
    return manifest.root / folder


def _header(folder: Path) -> pydicom.Dataset | None:
    for path in case_files(folder):
        try:
            return pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # not DICOM: folder_instance_set has skipped it too
            continue
    return None


def cohort_items(manifest: Manifest, target_phase: str) -> list[dict[str, str]]:
    """The cases as dataset items, once every pair is checked (typed error naming the case)."""
    items = []
    for case in manifest.cases:
        reference = case.reference
        if reference is None:
            raise CohortDataError("TRAINING_COHORT_INVALID", f"case {case.case_id} names no "
                                                             "reference series: export a cohort "
                                                             "of pairs (search --pairs)")
        if reference.phase != target_phase:
            raise CohortDataError("TRAINING_COHORT_INVALID", f"case {case.case_id}: its "
                                                             f"reference is {reference.phase}, "
                                                             f"the model learns {target_phase}")
        folders = (_folder(manifest, case, case.folder, "series"),
                   _folder(manifest, case, reference.folder, "reference"))
        for folder, uid, digest in ((folders[0], case.series_instance_uid,
                                     case.instance_set_sha256),
                                    (folders[1], reference.series_instance_uid,
                                     reference.instance_set_sha256)):
            found = folder_instance_set(folder) if folder.is_dir() else None
            if found is None or found[0] != uid or (digest is not None and found[1] != digest):
                raise CohortDataError("TRAINING_COHORT_CHANGED",
                                      f"case {case.case_id}: {folder.name} is not the series "
                                      "the manifest names (files missing, added or changed)")
        native, contrast = (_header(f) for f in folders)
        frame = native.get("FrameOfReferenceUID") if native else None
        if not frame or contrast is None or contrast.get("FrameOfReferenceUID") != frame:
            raise CohortDataError("TRAINING_PAIR_UNREGISTERED",
                                  f"case {case.case_id}: the two series do not share one frame "
                                  "of reference (nothing registers them here)")
        if native.get("KVP") in (None, ""):
            raise CohortDataError("TRAINING_COHORT_INVALID", f"case {case.case_id}: the native "
                                                             "series names no tube voltage (KVP)")
        items.append({CASE: case.case_id, NCCT: str(folders[0]), REFERENCE: str(folders[1])})
    return items


def cohort_data_manifest(manifest: Manifest, target_phase: str) -> dict[str, Any]:
    """What defines the training data of a cohort run: the batch manifest's hash, the cohort
    it came from and each pair's series and instance sets (no path: those are the site's)."""
    provenance = manifest.header.provenance
    return {"generator": GENERATOR, "input": "ncct", "target_phase": target_phase,
            "target": TARGET_DEFINITION, "batch_manifest_sha256": manifest.sha256,
            "cohort": {key: provenance.get(key) for key in (
                "cohort", "cohort_version", "cohort_sha256", "data_use_agreement", "labels")},
            "loss_weights": f"from the target: enhancement >= {ENHANCING_HU:g} HU draws patch "
                            f"centres, >= {LUMEN_HU:g} HU weighs as lumen; no labels",
            "training": [{"case_id": c.case_id, "series_instance_uid": c.series_instance_uid,
                          "instance_set_sha256": c.instance_set_sha256,
                          "reference_series_instance_uid": c.reference.series_instance_uid,
                          "reference_instance_set_sha256": c.reference.instance_set_sha256}
                         for c in manifest.cases if c.reference is not None],
            "validation": []}


class DicomPaird(MapTransform):
    """{native folder, reference folder} -> image (native), target (reference - native on the
    native grid), coverage (1 where the reference covers the voxel), kVp; low-passed for
    `spacing_mm` as inference does, as (1, k, j, i) MetaTensors on the native affine."""

    def __init__(self, spacing_mm: tuple[float, float, float]) -> None:
        super().__init__(keys=[NCCT, REFERENCE])
        self.spacing_mm = spacing_mm

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        try:
            native, contrast = read_series(Path(data[NCCT])), read_series(Path(data[REFERENCE]))
        except ImagingError as exc:
            raise CohortDataError("TRAINING_COHORT_UNREADABLE",
                                  f"case {data[CASE]}: {exc.code}: {exc.detail}") from None
        moved, covered = resample_onto(contrast, native)
        enhancement = np.where(covered, moved - native.array, 0.0).astype(np.float32)
        affine = torch.from_numpy(native.affine)
        out = dict(data)
        out[KVP] = float(native.source.header.KVP) if native.source is not None else None
        for key, array in ((IMAGE, anti_alias(native.array, native.affine, self.spacing_mm)),
                           (TARGET, anti_alias(enhancement, native.affine, self.spacing_mm)),
                           (COVERAGE, covered.astype(np.float32))):
            out[key] = MetaTensor(torch.from_numpy(np.ascontiguousarray(
                array[None], dtype=np.float32)), affine=affine.clone())
        return out


class EnhancementWeightsd(MapTransform):
    """The loss and patch-sampling weights from the target (HU), as `data.WeightMapsd` makes
    them from phantom labels: loss 1 + lumen_weight where it enhances by LUMEN_HU, 0 outside
    the reference's coverage; sampling vessel_weight where it enhances by ENHANCING_HU."""

    def __init__(self, lumen_weight: float, vessel_weight: float) -> None:
        super().__init__(keys=[TARGET, COVERAGE])
        self.lumen_weight, self.vessel_weight = lumen_weight, vessel_weight

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        target = torch.as_tensor(data[TARGET])
        covered = torch.as_tensor(data[COVERAGE]) > 0.5
        out = dict(data)
        out[LOSS_WEIGHT] = (1.0 + self.lumen_weight * (target >= LUMEN_HU).float()) * covered
        out[SAMPLE_WEIGHT] = 1.0 + (self.vessel_weight - 1.0) * (
            (target >= ENHANCING_HU) & covered).float()
        return out


def cohort_training_transforms(network: NetworkConfig, patch_size: Sequence[int],
                               patches_per_volume: int, lumen_weight: float,
                               vessel_weight: float) -> Compose:
    """`data.training_transforms` for real pairs: read, resample to the working grid, pad,
    weigh from the target, scale; then the same random patches."""
    return Compose([
        DicomPaird(network.spacing_mm),
        Spacingd(keys=[IMAGE, TARGET, COVERAGE], pixdim=network.spacing_mm,
                 mode=("bilinear", "bilinear", "nearest"), padding_mode="border",
                 dtype=np.float32),
        SpatialPadd(keys=[IMAGE], spatial_size=list(patch_size), value=AIR_HU),
        SpatialPadd(keys=[TARGET, COVERAGE], spatial_size=list(patch_size), value=0.0),
        EnhancementWeightsd(lumen_weight, vessel_weight),
        ScaleHUd(network),
        DeleteItemsd(keys=[NCCT, REFERENCE, CASE, COVERAGE, KVP]),
        *patch_transforms([IMAGE, TARGET, LOSS_WEIGHT], patch_size, patches_per_volume),
    ])


def _typed(exc: BaseException) -> DigitalContrastError | None:
    """MONAI wraps a transform's error in RuntimeErrors: the typed one inside, if any."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, DigitalContrastError):
        cause = cause.__cause__ or cause.__context__
    return cause


def cohort_dataset(items: Sequence[Mapping[str, str]], transform: Compose,
                   num_workers: int = 1) -> CacheDataset:
    """A CacheDataset over the pairs: each read and resampled once."""
    try:
        return CacheDataset([dict(i) for i in items], transform=transform,
                            num_workers=num_workers, progress=False, copy_cache=False)
    except RuntimeError as exc:
        typed = _typed(exc)
        if typed is None:
            raise
        raise typed from None

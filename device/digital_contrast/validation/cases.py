"""The cases of a protocol's dataset, each as the clinic would send it (an NCCT DICOM series)
with a scorer that compares the synthetic series read back from DICOM with the reference.

Phantom cases are rendered and written as DICOM here; their reference is the NCCT as read plus
the case's noiseless enhancement in the use case's target phase, so scanner noise is not
counted as error. Each phantom case also has its floor: the oracle, a model with the perfect
geometry and intensities of the case that, like any model, cannot see the bolus (it assumes the
middle of the phantom's bolus range at the series' kVp) and works on the model's working grid
(the true enhancement resampled there and back). What the oracle misses, no model can meet.
For abdomen-pv cases (the phantom extension) the oracle has the true label geometry, the
case's unenhanced values and tube voltage (all visible in the NCCT) and the liver variant (fatty
or cirrhotic: visible too), but the population-typical portal-venous enhancements of the
extension instead of the case's sampled ones (the extension's `typical_overrides`), which no
NCCT shows.
A dataset's shift set (abdomen-pv) takes cases with a liver variant and renders them with tube
voltage, noise and liver enhancement beyond the training ranges (`shift_overrides`).
Paired cases are a site's folders `<case>/ncct` and `<case>/cect` (DICOM folders or zips) on the
same grid; they have no floor. Cohort cases are the pairs of a repository export: the native
series in, the contrast series of the same frame of reference as the reference, scored on the
native slices it covers whole; no floor either.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from digital_contrast.batch_manifest import ManifestError, read_manifest
from digital_contrast.errors import DigitalContrastError
from digital_contrast.imaging.ct_image import HU_MAX, HU_MIN
from digital_contrast.imaging.resampling import (
    resample_onto,
    to_native_grid,
    to_working_spacing,
)
from digital_contrast.imaging.series_reader import read_series
from digital_contrast.imaging.volume import Volume
from digital_contrast.model.cohort_data import (
    CASE,
    NCCT,
    REFERENCE,
    CohortDataError,
    cohort_items,
)
from digital_contrast.phantom.case import (
    PhantomCase,
    generate_case,
    noiseless_images,
    render_case,
)
from digital_contrast.phantom.export import Phase, case_id, write_phase_dicom
from digital_contrast.phantom.extensions import get_extension
from digital_contrast.phantom.parameters import PhantomParameters, rng_stream
from digital_contrast.phantom.sampling import BOLUS_RANGE, arterial_lumen_hu, sample_parameters
from digital_contrast.validation.errors import ValidationRunError
from digital_contrast.validation.metrics import (
    PRIMARY,
    SHIFT,
    abdomen_pv_metrics,
    paired_metrics,
    phantom_metrics,
    phantom_stratum,
)
from digital_contrast.validation.protocol import (
    CohortDataset,
    Dataset,
    PairedDataset,
    PhantomDataset,
)

GEOMETRY_TOLERANCE_MM = 1e-3
Scorer = Callable[[Volume, Volume], dict[str, float]]  # (NCCT as read, synthetic as read)
# (NCCT as read, working spacing in mm) -> the oracle's synthetic image
Floor = Callable[[Volume, tuple[float, float, float]], Volume]


class CaseError(DigitalContrastError):
    """CASE_GEOMETRY: a volume is not on its case's grid (orientation, size or position)."""


@dataclass(frozen=True)
class ValidationCase:
    case_id: str
    seed: int | None
    stratum: str
    ncct: Path  # the series the clinic would send
    score: Scorer
    floor: Floor | None = None


def require_same_grid(volume: Volume, shape: tuple[int, ...], affine: np.ndarray,
                      what: str) -> None:
    """CASE_GEOMETRY unless `volume` lies on the grid (shape, LPS affine) of its case."""
    if volume.shape != tuple(shape):
        raise CaseError("CASE_GEOMETRY", f"{what} has {volume.shape} voxels, the case "
                                         f"{tuple(shape)}")
    offset = float(np.abs(volume.affine - affine).max())
    if offset > GEOMETRY_TOLERANCE_MM:
        raise CaseError("CASE_GEOMETRY", f"{what} is not on the case's grid (affine differs "
                                         f"by up to {offset:.3g}: flipped, rotated or shifted)")


# The shift set: outside the training draws (kVp 80-140 with 140 rare, noise 8-30 HU, liver
# enhancement 42-68 HU at 120 kVp) and only livers with a variant.
SHIFT_KVP = (80.0, 140.0)
SHIFT_NOISE_HU = ((4.0, 8.0), (30.0, 38.0))
SHIFT_LIVER_ENHANCEMENT_HU = ((30.0, 42.0), (68.0, 80.0))


def shift_overrides(seed: int) -> dict[str, Any]:
    """Tube voltage at an extreme, noise and liver enhancement from the bands just beyond the
    training ranges, from the seed's own "validation/shift" stream."""
    r = rng_stream(seed, "validation/shift")

    def band(bands: tuple[tuple[float, float], ...]) -> float:
        lo, hi = bands[int(r.integers(0, len(bands)))]
        return float(r.uniform(lo, hi))

    return {"kvp": float(SHIFT_KVP[int(r.integers(0, 2))]), "noise_sd_hu": band(SHIFT_NOISE_HU),
            "liver_enhancement_hu": band(SHIFT_LIVER_ENHANCEMENT_HU)}


def _shift_qualifies(parameters: PhantomParameters) -> bool:
    """Variants over-represented: a shift case has a fatty or cirrhotic liver."""
    return parameters.extension is not None and (
        parameters.extension.fatty or parameters.extension.cirrhotic)  # type: ignore[attr-defined]


def shift_seeds(dataset: PhantomDataset) -> list[int]:
    """The shift set's seeds: the first `cases` of its pool that qualify."""
    if dataset.shift is None:
        return []
    chosen = [seed for seed in dataset.shift.seeds.seeds
              if _shift_qualifies(sample_parameters(seed, dataset.size, dataset.extension))]
    if len(chosen) < dataset.shift.cases:
        raise ValidationRunError("DATASET_INVALID", f"the shift pool holds {len(chosen)} "
                                 f"qualifying cases (need {dataset.shift.cases})")
    return chosen[:dataset.shift.cases]


def selected_seeds(dataset: PhantomDataset) -> list[int]:
    """The dataset's seeds: the whole range, or the first `cases_per_stratum` of each stratum
    in it (DATASET_INVALID when the pool holds too few of one)."""
    if dataset.cases_per_stratum is None:
        return list(dataset.seeds.seeds)
    taken: dict[str, list[int]] = {stratum: [] for stratum in dataset.main_strata}
    for seed in dataset.seeds.seeds:
        chosen = taken[phantom_stratum(sample_parameters(seed, dataset.size,
                                                         dataset.extension))]
        if len(chosen) < dataset.cases_per_stratum:
            chosen.append(seed)
    short = {s: len(v) for s, v in taken.items() if len(v) < dataset.cases_per_stratum}
    if short:
        raise ValidationRunError("DATASET_INVALID", f"the seed pool holds too few cases of "
                                 f"strata {short} (need {dataset.cases_per_stratum} each)")
    return sorted(seed for seeds in taken.values() for seed in seeds)


def _unknowing(parameters: PhantomParameters,
               overrides: dict[str, Any]) -> PhantomParameters:
    """The case's parameters with what no NCCT shows replaced by what a model can know."""
    if parameters.extension is None:
        guess = arterial_lumen_hu(sum(BOLUS_RANGE) / 2, parameters.scanner.kvp)
        return sample_parameters(parameters.seed, parameters.size, arterial_lumen_hu=guess,
                                 **overrides)
    use_case = parameters.extension.USE_CASE
    typical = get_extension(use_case).typical_overrides(parameters)
    return sample_parameters(parameters.seed, parameters.size, use_case,
                             **(overrides | typical))


def _oracle(case: PhantomCase, target_phase: str,
            overrides: dict[str, Any] | None = None) -> Floor:
    """`overrides`: those the case was rendered with (a shift case's), kept by the oracle."""
    unknowing = _unknowing(case.parameters, {k: v for k, v in (overrides or {}).items()
                                             if k != "liver_enhancement_hu"})
    clean = noiseless_images(unknowing, case.labels)
    enhancement = (clean[target_phase] - clean["ncct"]).astype(np.float32)
    del clean

    def floor(ncct: Volume, spacing_mm: tuple[float, float, float]) -> Volume:
        working = to_working_spacing(enhancement, ncct.affine, spacing_mm)
        native = np.maximum(to_native_grid(working, ncct.affine, ncct.shape), 0.0)
        return ncct.with_array(np.clip(ncct.array + native, HU_MIN, HU_MAX).astype(np.float32))

    return floor


def phantom_cases(dataset: PhantomDataset, workdir: Path,
                  target_phase: str) -> Iterator[ValidationCase]:
    """`target_phase` is the use case's ('arterial', 'portal_venous'): the phase whose
    noiseless enhancement makes the reference."""
    plan = [(seed, {}) for seed in selected_seeds(dataset)]
    plan += [(seed, shift_overrides(seed)) for seed in shift_seeds(dataset)]
    for seed, overrides in plan:
        case = (render_case(sample_parameters(seed, dataset.size, dataset.extension,
                                              **overrides))
                if overrides else generate_case(seed, dataset.size, dataset.extension))
        name = case_id(seed, dataset.extension)
        folder = workdir / name / "ncct"  # written whole, in one rename
        write_phase_dicom(case, Phase.NCCT, folder)
        clean = noiseless_images(case.parameters, case.labels)
        enhancement = clean[target_phase] - clean["ncct"]
        del clean

        def score(ncct: Volume, synthetic: Volume, case=case, enhancement=enhancement
                  ) -> dict[str, float]:
            require_same_grid(ncct, case.labels.shape, case.affine, "the NCCT as read")
            require_same_grid(synthetic, case.labels.shape, case.affine,
                              "the synthetic series as read back")
            reference = np.clip(ncct.array + enhancement, HU_MIN, HU_MAX)
            if case.parameters.extension is not None:
                return abdomen_pv_metrics(ncct.array, synthetic.array, reference, case.labels,
                                          case.spacing)
            return phantom_metrics(ncct.array, synthetic.array, reference, case.labels,
                                   case.spacing, case.parameters.aorta.thrombus_shape != "none")

        stratum = SHIFT if overrides else phantom_stratum(case.parameters)
        yield ValidationCase(name, seed, stratum, folder, score,
                             _oracle(case, target_phase, overrides))


def _series(case_folder: Path, name: str) -> Path:
    for candidate in (case_folder / name, case_folder / f"{name}.zip"):
        if candidate.exists():
            return candidate
    raise ValidationRunError("DATASET_INVALID", f"case {case_folder.name} has no {name}/ "
                                                f"folder or {name}.zip")


def paired_cases(dataset: PairedDataset, base: Path) -> Iterator[ValidationCase]:
    """Cases in name order; `base` resolves a relative dataset folder (the protocol's)."""
    root = dataset.folder if dataset.folder.is_absolute() else base / dataset.folder
    if not root.is_dir():
        raise ValidationRunError("DATASET_INVALID", f"the paired-case folder {root} is missing")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValidationRunError("DATASET_INVALID", f"{root} holds no case folder")
    cases = [(folder, _series(folder, "ncct"), _series(folder, "cect")) for folder in folders]
    for folder, ncct, cect in cases:
        def score(read_ncct: Volume, synthetic: Volume, cect=cect) -> dict[str, float]:
            reference = read_series(cect)
            require_same_grid(reference, read_ncct.shape, read_ncct.affine, "the CECT")
            require_same_grid(synthetic, read_ncct.shape, read_ncct.affine,
                              "the synthetic series as read back")
            return paired_metrics(read_ncct.array, synthetic.array, reference.array,
                                  read_ncct.spacing)

        yield ValidationCase(folder.name, None, PRIMARY, ncct, score)


def covered_slab(reference: Volume, ncct: Volume) -> tuple[slice, np.ndarray]:
    """The NCCT's slices the reference covers whole, and the reference resampled onto them;
    CASE_GEOMETRY when it covers none (the pair shares its frame of reference: checked)."""
    moved, covered = resample_onto(reference, ncct)
    whole = np.flatnonzero(covered.reshape(covered.shape[0], -1).all(axis=1))
    if not len(whole):
        raise CaseError("CASE_GEOMETRY", "the reference covers no whole slice of the NCCT")
    slab = slice(int(whole[0]), int(whole[-1]) + 1)
    return slab, moved[slab]


def cohort_cases(dataset: CohortDataset, base: Path,
                 target_phase: str) -> Iterator[ValidationCase]:
    """The pairs of the export the protocol names, every one checked before the first runs
    (`model.cohort_data.cohort_items`); scored on the slices the reference covers whole."""
    path = dataset.manifest if dataset.manifest.is_absolute() else base / dataset.manifest
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        raise ValidationRunError("DATASET_INVALID", f"{exc.code}: {exc.detail}") from None
    if manifest.sha256 != dataset.manifest_sha256:
        raise ValidationRunError("DATASET_CHANGED", f"{path.name} is not the export this "
                                                    f"protocol revision names (SHA-256 "
                                                    f"{manifest.sha256[:12]}, not "
                                                    f"{dataset.manifest_sha256[:12]})")
    if manifest.header.provenance.get("cohort_sha256") != dataset.cohort_sha256:
        raise ValidationRunError("DATASET_CHANGED", f"{path.name} exports another cohort "
                                                    "than the one the protocol names")
    try:
        items = cohort_items(manifest, target_phase)
    except CohortDataError as exc:
        raise ValidationRunError("DATASET_INVALID", f"{exc.code}: {exc.detail}") from None
    for item in items:
        def score(read_ncct: Volume, synthetic: Volume,
                  folder: str = item[REFERENCE]) -> dict[str, float]:
            require_same_grid(synthetic, read_ncct.shape, read_ncct.affine,
                              "the synthetic series as read back")
            slab, reference = covered_slab(read_series(Path(folder)), read_ncct)
            return paired_metrics(read_ncct.array[slab], synthetic.array[slab], reference,
                                  read_ncct.spacing)

        yield ValidationCase(item[CASE], None, PRIMARY, Path(item[NCCT]), score)


def dataset_cases(dataset: Dataset, workdir: Path, protocol_folder: Path,
                  target_phase: str) -> Iterator[ValidationCase]:
    if isinstance(dataset, PhantomDataset):
        return phantom_cases(dataset, workdir, target_phase)
    if isinstance(dataset, CohortDataset):
        return cohort_cases(dataset, protocol_folder, target_phase)
    return paired_cases(dataset, protocol_folder)

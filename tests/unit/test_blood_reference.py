"""The blood reference: the median unenhanced HU of the aortic lumen at the top of the scan, read
from the NCCT and a lumen mask (here the phantom's labels)."""

import statistics

import numpy as np
import pytest

from digital_contrast.model.blood_reference import BloodReferenceError, blood_reference
from digital_contrast.phantom.case import generate_case
from digital_contrast.phantom.labels import Label

# Primary, high-noise, anaemic and iso-attenuating cases, noise 8-30 HU.
SEEDS = (20000, 20001, 20002, 20003, 20005, 20009, 20013, 20020)


@pytest.fixture(scope="module")
def cases():
    return [generate_case(seed, "small") for seed in SEEDS]


@pytest.mark.req("SRS-MOD-009")
def test_the_blood_reference_is_read_within_a_few_hu_at_any_noise(cases) -> None:
    errors = []
    for case in cases:
        found = blood_reference(case.ncct, case.labels == Label.AORTA_LUMEN, case.affine)
        errors.append(abs(found.hu - case.parameters.intensities.blood_hu))
        assert found.voxels >= 1000 and found.spread_hu > 0
    # The lumen's own smooth texture (1.5 HU) and scanner noise up to 30 HU, read over the top
    # 20 mm: blood itself varies 25-55 HU between these cases.
    assert statistics.median(errors) <= 1.6 and max(errors) <= 4.0, errors


@pytest.mark.req("SRS-MOD-009")
def test_enhancement_elsewhere_and_thrombus_in_the_sac_do_not_move_it(cases) -> None:
    case = cases[0]
    lumen = case.labels == Label.AORTA_LUMEN
    before = blood_reference(case.ncct, lumen, case.affine)
    elsewhere = np.where(lumen, case.ncct, case.ncct + 300.0)  # anything but the lumen changes
    assert blood_reference(elsewhere, lumen, case.affine) == before
    # Flipping the slice order (feet-first storage) changes nothing: "top" is read from z.
    flipped = case.affine.copy()
    flipped[:3, 0] *= -1
    flipped[:3, 3] = case.affine[:3, :3] @ [case.ncct.shape[0] - 1, 0, 0] + case.affine[:3, 3]
    assert blood_reference(case.ncct[::-1], lumen[::-1], flipped) == before


@pytest.mark.req("SRS-MOD-009")
def test_too_little_lumen_is_a_typed_refusal(cases) -> None:
    case = cases[0]
    with pytest.raises(BloodReferenceError) as nothing:
        blood_reference(case.ncct, np.zeros_like(case.labels, dtype=bool), case.affine)
    assert nothing.value.code == "BLOOD_REFERENCE_UNAVAILABLE"
    speck = np.zeros_like(case.labels, dtype=bool)
    speck[5, 100:103, 100:103] = True
    with pytest.raises(BloodReferenceError, match="lumen core"):
        blood_reference(case.ncct, speck, case.affine)
    with pytest.raises(ValueError):
        blood_reference(case.ncct, speck[1:], case.affine)


@pytest.mark.req("SRS-MOD-009")
def test_only_the_widest_vessel_of_a_first_stage_mask_counts(cases) -> None:
    """A first-stage mask also holds kidney cortex and renal arteries: on each slice only the
    region around the mask's deepest point (the aorta) is read."""
    case = cases[0]
    lumen = case.labels == Label.AORTA_LUMEN
    before = blood_reference(case.ncct, lumen, case.affine)
    cortex = case.labels == Label.KIDNEY_CORTEX
    assert cortex[lumen.any(axis=(1, 2))].any()
    with_cortex = blood_reference(case.ncct, lumen | cortex, case.affine)
    assert with_cortex == before

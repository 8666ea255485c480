"""abdomen-pv validation metrics on constructed arrays whose answer is known: an organ's
enhancement error (and a uniform 20 HU offset that must fail), the half-maximum organ Dice,
the gain-corrected vein error, breaks of a vein, lesions filled in by enhancement."""

import numpy as np
import pytest

from digital_contrast.phantom.labels import Label
from digital_contrast.validation import organ_metrics as om
from digital_contrast.validation.metrics import (
    LESIONS_LOST,
    LESIONS_LOST_UNFLAGGED,
    abdomen_pv_metrics,
    with_confidence,
)

SPACING = (1.0, 1.0, 1.0)
LIVER_HU, LIVER_ENH = 60.0, 55.0


def _liver(shape=(40, 48, 48)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (a liver block in fat), the NCCT and the true enhancement."""
    labels = np.full(shape, Label.FAT_VISCERAL, dtype=np.uint8)
    labels[4:-4, 4:-4, 4:-4] = Label.LIVER
    ncct = np.where(labels == Label.LIVER, LIVER_HU, -100.0).astype(np.float32)
    true = np.where(labels == Label.LIVER, LIVER_ENH, 0.0).astype(np.float32)
    return labels, ncct, true


LIVER = om.Organ("liver", (Label.LIVER,), (Label.LIVER,))


@pytest.mark.req("SRS-VAL-013")
def test_organ_enhancement_error_is_zero_for_the_truth_and_20_for_a_uniform_offset() -> None:
    labels, _, true = _liver()
    interior = om.organ_interior(labels, LIVER, SPACING)
    assert interior.any() and not interior[4, 20, 20]  # the outermost 3 mm are left out
    assert om.organ_enhancement_error(true, true, interior) == 0.0
    offset = true + 20.0 * (labels == Label.LIVER)
    assert om.organ_enhancement_error(offset, true, interior) == pytest.approx(20.0)
    # A wrong edge (partial volume on the working grid) is not an error of the organ's value.
    edge = true.copy()
    edge[4:6] = 0.0
    assert om.organ_enhancement_error(edge, true, interior) == 0.0


@pytest.mark.req("SRS-VAL-013")
def test_organ_dice_reads_each_image_by_its_own_level() -> None:
    labels, _, true = _liver()
    # Half the enhancement everywhere: the same half-maximum organ, Dice 1.
    assert om.organ_dice(0.5 * true, true, labels, LIVER, SPACING) == pytest.approx(1.0)
    half_gone = true.copy()
    half_gone[:20] = 0.0  # the lower half of the organ not synthesized
    assert om.organ_dice(half_gone, true, labels, LIVER, SPACING) < 0.8


def _tube(shape=(60, 24, 24), radius=5.0) -> tuple[np.ndarray, np.ndarray]:
    """A portal vein along the slices (k), radius in mm, in liver."""
    labels = np.full(shape, Label.LIVER, dtype=np.uint8)
    j, i = np.mgrid[:shape[1], :shape[2]]
    disk = (j - shape[1] / 2) ** 2 + (i - shape[2] / 2) ** 2 <= radius**2
    labels[5:-5][:, disk] = Label.PORTAL_VEIN
    # Enhancement: the vein's 130 HU in liver enhanced by 55 HU.
    true = np.where(labels == Label.PORTAL_VEIN, 130.0, 55.0).astype(np.float32)
    return labels, true


PV = om.Vein("portal_vein", (Label.PORTAL_VEIN,))


@pytest.mark.req("SRS-VAL-013")
def test_the_gain_takes_out_the_level_and_keeps_the_shape() -> None:
    labels, true = _tube()
    assert om.gain_error_fraction(true, true, labels, PV, SPACING) == pytest.approx(0.0)
    # 30 % low everywhere (a contrast level no NCCT shows): nothing left after the gain.
    assert om.gain_error_fraction(0.7 * true, true, labels, PV, SPACING) == pytest.approx(
        0.0, abs=1e-6)
    hollow = true.copy()
    hollow[20:40] = 55.0  # a third of the vein drawn as liver
    assert om.gain_error_fraction(hollow, true, labels, PV, SPACING) > 0.15
    assert om.gain_error_fraction(np.zeros_like(true), true, labels, PV, SPACING) == 1.0


@pytest.mark.req("SRS-VAL-013")
def test_a_break_in_a_vein_is_counted_and_a_dip_shorter_than_4_mm_is_not() -> None:
    labels, true = _tube()
    assert om.vein_breaks(true, true, labels, PV, SPACING) == 0
    # 40 % low everywhere (a contrast level no NCCT shows) is not a break.
    assert om.vein_breaks(0.6 * true, true, labels, PV, SPACING) == 0
    broken = true.copy()
    broken[28:36] = 55.0  # 8 mm of the vein drawn as liver: a break (reads as thrombosis)
    assert om.vein_breaks(broken, true, labels, PV, SPACING) == 1
    twice = broken.copy()
    twice[44:50] = 55.0
    assert om.vein_breaks(twice, true, labels, PV, SPACING) == 2
    dip = true.copy()
    dip[30:32] = 55.0  # 2 mm: within what the working grid's resampling does
    assert om.vein_breaks(dip, true, labels, PV, SPACING) == 0
    missing = np.full_like(true, 55.0)  # the vein drawn as liver all along
    assert om.vein_breaks(missing, true, labels, PV, SPACING) == 1
    no_vein = np.full_like(labels, Label.LIVER)
    assert np.isnan(om.vein_breaks(true, true, no_vein, PV, SPACING))


def _lesion_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 12 mm hypovascular metastasis in the liver block: NCCT 15 HU below the liver."""
    labels, ncct, true = _liver()
    k, j, i = np.mgrid[:40, :48, :48]
    ball = (k - 20) ** 2 + (j - 24) ** 2 + (i - 24) ** 2 <= 36
    labels[ball] = Label.LIVER_METASTASIS
    ncct[ball] = LIVER_HU - 15.0
    true[ball] = 0.3 * LIVER_ENH
    return labels, ncct, true


@pytest.mark.req("SRS-VAL-013")
def test_a_lesion_filled_in_by_synthesized_parenchyma_is_lost() -> None:
    labels, ncct, true = _lesion_case()
    reference = ncct + true
    (kept,) = om.lesion_contrasts(ncct, reference, reference, labels, SPACING)
    assert kept.label == Label.LIVER_METASTASIS
    assert kept.ncct_hu == pytest.approx(-15.0) and kept.synthetic_hu < -40.0
    assert not kept.lost
    filled = ncct + np.where(np.isin(labels, [Label.LIVER, Label.LIVER_METASTASIS]),
                             LIVER_ENH + 15.0 * (labels == Label.LIVER_METASTASIS), 0.0)
    (gone,) = om.lesion_contrasts(ncct, filled, reference, labels, SPACING)
    assert gone.synthetic_hu == pytest.approx(0.0, abs=1e-4) and gone.lost
    # Within the tolerance (2 HU) a smaller contrast is not a loss.
    close = filled - 14.0 * (labels == Label.LIVER_METASTASIS)
    (near,) = om.lesion_contrasts(ncct, close, reference, labels, SPACING)
    assert near.synthetic_hu == pytest.approx(-14.0) and not near.lost


@pytest.mark.req("SRS-VAL-013")
def test_a_lost_lesion_counts_against_the_model_only_when_not_labelled_low_confidence() -> None:
    labels, ncct, true = _lesion_case()
    reference = ncct + true
    filled = ncct + LIVER_ENH * np.isin(labels, [Label.LIVER, Label.LIVER_METASTASIS]) + (
        15.0 * (labels == Label.LIVER_METASTASIS))
    metrics = abdomen_pv_metrics(ncct, filled, reference, labels, SPACING, label_free=False)
    assert metrics[LESIONS_LOST] == 1
    assert with_confidence(metrics, False)[LESIONS_LOST_UNFLAGGED] == 1
    assert with_confidence(metrics, True)[LESIONS_LOST_UNFLAGGED] == 0
    perfect = abdomen_pv_metrics(ncct, reference, reference, labels, SPACING,
                                 label_free=False)
    assert perfect[LESIONS_LOST] == 0 and perfect["liver_enhancement_error_hu"] == 0
    assert perfect["unchanged_beyond_2mm_p99_abs_hu"] == 0
    # A case without lesions has no lesion metric (nothing to judge, not a pass by default).
    no_lesion, ncct2, true2 = _liver()
    plain = abdomen_pv_metrics(ncct2, ncct2 + true2, ncct2 + true2, no_lesion, SPACING,
                               label_free=False)
    assert LESIONS_LOST not in with_confidence(plain, False)

"""The abdomen-pv floor on a real phantom case: the oracle (true geometry, population-typical
portal-venous values, the model's working grid) meets protocol abdomen-pv v1, and the same
oracle degraded where a model could fail (a 20 HU liver offset, a cut portal vein, lesions
filled in by enhancement) fails the matching criteria."""

import numpy as np
import pytest

from digital_contrast.config import REPO_ROOT
from digital_contrast.imaging.volume import Volume
from digital_contrast.phantom.case import generate_case, noiseless_images
from digital_contrast.phantom.extensions import get_extension
from digital_contrast.phantom.labels import LESION_LABELS, Label
from digital_contrast.validation import load_protocol
from digital_contrast.validation.cases import _oracle
from digital_contrast.validation.metrics import abdomen_pv_metrics, with_confidence
from digital_contrast.validation.protocol_run import evaluate, measured
from digital_contrast.validation.results import CaseOutcome

SEED = 49003  # floor-study pool: stratum lesions, 140 kVp, noise 12 HU, 3 lesions
WORKING_MM = (2.0, 1.5, 1.5)  # abdomen-pv's working spacing


@pytest.fixture(scope="module")
def floor():
    case = generate_case(SEED, "small", "abdomen-pv")
    clean = noiseless_images(case.parameters, case.labels)
    reference = case.ncct + clean["portal_venous"] - clean["ncct"]
    del clean
    oracle = _oracle(case, "portal_venous")(Volume(case.ncct, case.affine), WORKING_MM).array
    return case, reference, oracle


def _score(case, synthetic, reference) -> dict[str, float]:
    return with_confidence(abdomen_pv_metrics(case.ncct, synthetic, reference, case.labels,
                                              case.spacing, label_free=False), False)


def _verdicts(metrics: dict[str, float], stratum: str = "lesions") -> dict[str, bool]:
    """Each criterion of protocol abdomen-pv v1 for `stratum`, on this one case."""
    protocol = load_protocol(REPO_ROOT / "validation/protocols/abdomen-pv.yaml").protocol
    outcome = CaseOutcome("case", SEED, stratum, metrics=measured(metrics))
    rules = [r for r in protocol.acceptance if r.stratum == stratum
             and r.metric != "low_confidence"]
    return {c.metric: c.passed for c in evaluate(rules, [outcome])
            if c.metric != "cases_completed"}


@pytest.mark.req("SRS-VAL-015", "SRS-VAL-013")
def test_the_oracle_knows_what_an_ncct_shows_and_no_more(floor) -> None:
    case, _, _ = floor
    typical = get_extension("abdomen-pv").typical_overrides(case.parameters)
    assert typical["liver_enhancement_hu"] == 55.0  # a normal liver
    assert typical["portal_enhancement_hu"] == pytest.approx(
        170.0 - case.parameters.intensities.blood_hu)
    assert case.parameters.extension.lesion_count == 3


@pytest.mark.req("SRS-VAL-015", "SRS-VAL-013")
def test_the_oracle_meets_the_protocol_and_a_degraded_oracle_fails_it(floor) -> None:
    case, reference, oracle = floor
    exact = _score(case, reference, reference)
    assert exact["liver_enhancement_error_hu"] == 0 and exact["enhancing_organ_dice"] == 1
    assert exact["portal_vein_breaks"] == 0 and exact["lesions_lost"] == 0
    metrics = _score(case, oracle, reference)
    assert all(_verdicts(metrics).values()), _verdicts(metrics)

    labels = case.labels
    offset = oracle + 20.0 * (labels == Label.LIVER)  # a uniform 20 HU offset in the liver
    verdicts = _verdicts(_score(case, offset, reference))
    assert not verdicts["liver_enhancement_error_hu"]

    cut = oracle.copy()  # the portal system unenhanced over 9 mm at the portal vein's middle
    portal = labels == Label.PORTAL_VEIN
    k = int(np.median(np.argwhere(portal)[:, 0]))
    slab = np.zeros_like(portal)
    slab[k - 1:k + 2] = True
    system = np.isin(labels, [Label.PORTAL_VEIN, Label.SPLENIC_VEIN,
                              Label.SUPERIOR_MESENTERIC_VEIN])
    cut[slab & system] = case.ncct[slab & system]  # unenhanced: reads as thrombosis
    broken = _score(case, cut, reference)
    assert broken["portal_vein_breaks"] >= 1 and not _verdicts(broken)["portal_vein_breaks"]

    filled = oracle.copy()  # every lesion filled in by synthesized parenchyma
    liver_mean = float(oracle[labels == Label.LIVER].mean())
    lesions = np.isin(labels, LESION_LABELS)
    filled[lesions] = liver_mean
    lost = _score(case, filled, reference)
    # Two of the three lesions touch and are judged as one; the cyst (50 HU below the liver in
    # the NCCT) is lost, the faint metastasis pair (5 HU) keeps the contrast the NCCT had.
    assert lost["lesions_lost"] == 1 and not _verdicts(lost)["lesions_lost_unflagged"]
    flagged = with_confidence(lost, True)  # the same result labelled LOW CONFIDENCE
    assert flagged["lesions_lost_unflagged"] == 0

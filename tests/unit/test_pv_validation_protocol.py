"""Strata and metrics per phantom use case: abdomen-pv strata from the sampled parameters, the
protocol's dataset fields (extension, shift set), refusal of a metric or stratum its cases do
not have, and the committed protocol abdomen-pv v1."""

from pathlib import Path

import pytest
import yaml

from digital_contrast.config import REPO_ROOT
from digital_contrast.phantom.sampling import sample_parameters
from digital_contrast.validation import ValidationRunError, load_protocol
from digital_contrast.validation.cases import selected_seeds, shift_overrides, shift_seeds
from digital_contrast.validation.metrics import (
    METRICS,
    PHANTOM_STRATA,
    PV_STRATA,
    SHIFT,
    STRATA,
    phantom_stratum,
)
from digital_contrast.validation.protocol import PhantomDataset

PV = "abdomen-pv"


def _pv(seed: int = 40000, **overrides):
    return sample_parameters(seed, "small", PV, **overrides)


@pytest.mark.req("SRS-VAL-014")
def test_abdomen_pv_strata_follow_noise_lesions_and_the_liver_variant() -> None:
    quiet, no_lesion = {"noise_sd_hu": 12.0}, {"lesion_count": 0, "lesions": ()}
    assert phantom_stratum(_pv(noise_sd_hu=25.0)) == "high-noise"
    assert phantom_stratum(_pv(liver_state="normal", **quiet, **no_lesion)) == "primary"
    assert phantom_stratum(_pv(liver_state="fatty", **quiet, **no_lesion)) == "fatty"
    for state in ("cirrhotic", "fatty_cirrhotic"):
        assert phantom_stratum(_pv(liver_state=state, **quiet, **no_lesion)) == "cirrhotic"
    lesion = ((1.0, *_lesion_position(), 12.0),)
    assert phantom_stratum(_pv(liver_state="cirrhotic", lesion_count=1, lesions=lesion,
                               **quiet)) == "lesions"
    # aaa-cta's strata and their order are untouched.
    assert PHANTOM_STRATA["aaa-cta"] is STRATA and list(STRATA) == [
        "primary", "no-ilt", "iso-ilt", "high-noise", "iso-ilt-high-noise"]
    assert phantom_stratum(sample_parameters(9001, "small")) == "primary"
    assert set(PV_STRATA) == {"primary", "fatty", "cirrhotic", "lesions", "high-noise"}


def _lesion_position() -> tuple[float, float, float]:
    """Where a sampled case of the pool put a lesion (inside the right lobe)."""
    for seed in range(40000, 40100):
        extension = _pv(seed).extension
        if extension.lesion_count:
            return tuple(extension.lesions[0][1:4])
    raise AssertionError("no lesion in 100 seeds")


def _dataset(**changes) -> dict:
    return {"generator": "digital_contrast.phantom", "size": "small",
            "seeds": {"start": 40000, "count": 1000}, "cases_per_stratum": 2,
            "extension": PV, "shift": {"seeds": {"start": 41000, "count": 1000}, "cases": 3,
                                       "description": "kVp, noise and liver beyond training"}
            } | changes


def _protocol(folder: Path, *, dataset: dict | None = None, acceptance: list | None = None,
              use_case: str = PV) -> Path:
    data = {"id": "pv-test", "version": 1, "use_case": use_case,
            "evidence": "procedural digital phantom only; not clinically validated",
            "dataset": dataset or _dataset(), "reference": "NCCT + noiseless PV enhancement",
            "primary_stratum": "normal liver",
            "acceptance": acceptance or [
                {"metric": "liver_enhancement_error_hu", "op": "<=", "threshold": 10},
                {"metric": "portal_vein_breaks", "op": "<=", "threshold": 0,
                 "statistic": "worst", "stratum": "shift"},
                {"metric": "unchanged_beyond_2mm_p99_abs_hu", "op": "<=", "threshold": 5,
                 "stratum": "cirrhotic"}],
            "revisions": [{"version": 1, "change": "first"}]}
    path = folder / "pv-test.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.req("SRS-VAL-014")
def test_a_pv_dataset_selects_per_stratum_and_its_shift_set(tmp_path: Path) -> None:
    protocol = load_protocol(_protocol(tmp_path)).protocol
    dataset = protocol.dataset
    assert isinstance(dataset, PhantomDataset) and dataset.phantom == PV
    assert dataset.strata == (*PV_STRATA, SHIFT)
    seeds = selected_seeds(dataset)
    assert sorted(phantom_stratum(_pv(s)) for s in seeds) == sorted(list(PV_STRATA) * 2)
    shift = shift_seeds(dataset)
    assert len(shift) == 3 and all(41000 <= s < 42000 for s in shift)
    for seed in shift:
        overrides = shift_overrides(seed)
        assert overrides["kvp"] in (80.0, 140.0)
        assert not 8.0 <= overrides["noise_sd_hu"] <= 30.0
        assert not 42.0 <= overrides["liver_enhancement_hu"] <= 68.0
        extension = _pv(seed).extension
        assert extension.fatty or extension.cirrhotic
    described = dataset.describe()
    assert "abdomen-pv" in described and "shift set of 3 cases from seeds 41000-41999" in described


@pytest.mark.req("SRS-VAL-014")
@pytest.mark.parametrize(("change", "message"), [
    ({"acceptance": [{"metric": "lumen_dice", "op": ">=", "threshold": 0.9}]},
     "'lumen_dice' is measured on aaa-cta phantom cases"),
    ({"acceptance": [{"metric": "liver_dice", "op": ">=", "threshold": 0.9,
                      "stratum": "iso-ilt"}]}, "stratum 'iso-ilt' is unknown"),
    ({"acceptance": [{"metric": "liver_dice", "op": ">=", "threshold": 0.9,
                      "stratum": "shift"}], "dataset": _dataset(shift=None)},
     "stratum 'shift' is unknown"),
    ({"acceptance": [{"metric": "hepatic_vein_continuity", "op": "<=", "threshold": 0}]},
     "metric 'hepatic_vein_continuity' is unknown"),
    ({"use_case": "aaa-cta"}, "phantom extension 'abdomen-pv' is not this protocol's use case"),
    ({"dataset": _dataset(extension=None)}, "shift set is defined for the abdomen-pv"),
    ({"dataset": _dataset(shift={"seeds": {"start": 40500, "count": 10}, "cases": 2,
                                 "description": "overlapping"})}, "overlap"),
])
def test_metrics_and_strata_the_cases_do_not_have_are_refused(tmp_path: Path, change: dict,
                                                              message: str) -> None:
    with pytest.raises(ValidationRunError) as error:
        load_protocol(_protocol(tmp_path, **change))
    assert error.value.code == "PROTOCOL_INVALID" and message in error.value.detail


@pytest.mark.req("SRS-VAL-014")
def test_an_aaa_cta_protocol_cannot_name_organ_metrics(tmp_path: Path) -> None:
    dataset = {"generator": "digital_contrast.phantom", "size": "small",
               "seeds": {"start": 9000, "count": 2}}
    with pytest.raises(ValidationRunError, match="measured on abdomen-pv phantom cases"):
        load_protocol(_protocol(tmp_path, use_case="aaa-cta", dataset=dataset, acceptance=[
            {"metric": "portal_vein_breaks", "op": "<=", "threshold": 0}]))
    assert load_protocol(REPO_ROOT / "validation/protocols/aaa-cta.yaml").protocol.version == 4


@pytest.mark.req("SRS-VAL-015", "SRS-VAL-014")
def test_the_committed_abdomen_pv_protocol_names_its_pools_floor_and_exclusion() -> None:
    fixed = load_protocol(REPO_ROOT / "validation/protocols/abdomen-pv.yaml")
    protocol = fixed.protocol
    assert protocol.use_case == PV and protocol.version == 1
    assert "phantom" in protocol.evidence and "not clinically validated" in protocol.evidence
    dataset = protocol.dataset
    assert isinstance(dataset, PhantomDataset) and dataset.extension == PV
    assert dataset.seeds.start == 40000 and dataset.shift and dataset.shift.seeds.start == 41000
    metrics = {rule.metric for rule in protocol.acceptance}
    for name in ("liver_enhancement_error_hu", "spleen_enhancement_error_hu",
                 "kidney_cortex_enhancement_error_hu", "portal_vein_gain_error_fraction",
                 "enhancing_organ_dice", "portal_vein_breaks", "hepatic_vein_breaks",
                 "lesions_lost_unflagged", "unchanged_beyond_2mm_median_abs_hu",
                 "unchanged_beyond_2mm_p99_abs_hu", "low_confidence"):
        assert name in metrics and name in METRICS
    strata = {rule.stratum for rule in protocol.acceptance}
    assert strata == {*PV_STRATA, SHIFT}
    rationale = protocol.revisions[0].rationale or ""
    assert "floor study" in rationale and "49000" in rationale
    assert "lesion detection and characterisation" in protocol.reference

"""Use cases as validated configuration."""

from pathlib import Path

import pytest
import yaml

from digital_contrast.usecases import Phase, UseCaseError, catalog, load_use_case, use_cases


@pytest.mark.req("SRS-UC-001")
def test_both_use_cases_are_defined_completely() -> None:
    cases = use_cases()
    assert set(cases) >= {"aaa-cta", "abdomen-pv"}
    assert cases["aaa-cta"].target_phase is Phase.ARTERIAL
    assert cases["abdomen-pv"].target_phase is Phase.PORTAL_VENOUS
    for case in cases.values():
        assert case.intended_use and case.exclusions and case.intended_users
        assert case.model_name and case.validation_protocol.endswith(".yaml")
        assert case.preprocessing.hu_window[0] < case.preprocessing.hu_window[1]
        assert case.envelope.min_age_years >= 18


@pytest.mark.req("SRS-UC-002")
def test_aneurysm_use_case_states_its_exclusions_and_evidence() -> None:
    case = load_use_case("aaa-cta")
    exclusions = " ".join(case.exclusions).lower()
    for excluded in ("dissection", "rupture", "bleeding", "endoleak", "under 18"):
        assert excluded in exclusions
    assert "phantom" in case.evidence and "not clinically validated" in case.evidence


@pytest.mark.req("SRS-UC-001")
def test_unknown_use_case_is_refused() -> None:
    with pytest.raises(UseCaseError) as info:
        load_use_case("brain-perfusion")
    assert info.value.code == "USECASE_UNKNOWN"
    assert "aaa-cta" in info.value.detail


@pytest.mark.req("SRS-UC-001")
@pytest.mark.parametrize(("change", "fragment"), [
    ({"target_phase": "delayed"}, "target_phase"),
    ({"exclusions": []}, "exclusions"),
    ({"envelope": {"kvp": [140, 80]}}, "kvp"),
    ({"surprise": True}, "surprise"),
])
def test_malformed_definition_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         change: dict, fragment: str) -> None:
    definition = yaml.safe_load((catalog.DEFINITIONS / "aaa-cta.yaml").read_text())
    for key, value in change.items():
        definition[key] = definition[key] | value if isinstance(value, dict) and key in \
            definition else value
    (tmp_path / "aaa-cta.yaml").write_text(yaml.safe_dump(definition))
    monkeypatch.setattr(catalog, "DEFINITIONS", tmp_path)
    catalog.use_cases.cache_clear()
    try:
        with pytest.raises(UseCaseError) as info:
            catalog.use_cases()
    finally:
        catalog.use_cases.cache_clear()
    assert info.value.code == "USECASE_INVALID" and fragment in info.value.detail

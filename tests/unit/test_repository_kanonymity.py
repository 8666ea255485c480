"""k-anonymity of an export: classes counted in patients, small classes suppressed whole."""

import pytest

from digital_contrast.repository.index.kanonymity import ExportRow, k_anonymise


def _row(n: int, patient: str, **values) -> ExportRow:
    base = {"site": "site-a", "age_band": "60-69", "sex": "F", "study_year": 2015,
            "manufacturer": "ACME"}
    return ExportRow(series_uid=f"2.25.{n}", patient=patient, **{**base, **values})


@pytest.mark.req("SRS-REPO-009")
def test_small_classes_are_suppressed_and_patients_not_series_are_counted() -> None:
    rows = [_row(0, "P1"), _row(1, "P2"), _row(2, "P3"),  # one class of 3 patients
            _row(3, "P4", sex="M"), _row(4, "P4", sex="M"), _row(5, "P4", sex="M"),  # 1 patient
            _row(6, "P5", age_band="90+")]
    report = k_anonymise(rows, 3)
    assert {r.series_uid for r in report.kept} == {"2.25.0", "2.25.1", "2.25.2"}
    assert (report.classes, report.smallest_class_before, report.smallest_class_after) == (
        3, 1, 3)
    assert (report.series_kept, report.series_suppressed, report.patients_suppressed) == (
        3, 4, 2)
    assert report.as_dict()["quasi_identifiers"] == ["age_band", "sex", "study_year",
                                                     "manufacturer", "site"]
    # the same pseudonym at two sites is two people
    two_sites = [_row(0, "P1"), _row(1, "P1", site="site-b")]
    assert k_anonymise(two_sites, 2).series_kept == 0
    assert k_anonymise([_row(0, "P1", site="s"), _row(1, "P2", site="s")], 2).series_kept == 2


@pytest.mark.req("SRS-REPO-009")
def test_k_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        k_anonymise([_row(0, "P1")], 1)
    with pytest.raises(ValueError):
        k_anonymise([_row(0, "P1")], 2, ("postcode",))
    assert k_anonymise([_row(0, "P1", study_year=2014), _row(1, "P2")], 2,
                       ("age_band", "sex")).series_kept == 2
    assert k_anonymise([], 2).smallest_class_after == 0

"""QIDO-RS: query parsing (keys, ranges, paging, refusals) and result objects (tags and VRs)."""

from datetime import date, time
from typing import Any

import pydicom
import pytest
from starlette.datastructures import QueryParams

from digital_contrast.api.dicomweb.errors import DicomWebError
from digital_contrast.api.dicomweb.qido import (
    FUZZY_WARNING,
    CodeListMatch,
    DateRangeMatch,
    TextMatch,
    UidListMatch,
    parse_qido_query,
    series_result,
    study_result,
)

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.2"


def _bad(params: Any, level: str = "study") -> str:
    with pytest.raises(DicomWebError) as info:
        parse_qido_query(params, level)  # type: ignore[arg-type]
    assert info.value.code == "QIDO_BAD_QUERY" and info.value.status == 400
    return info.value.detail


@pytest.mark.req("SRS-DCMW-005")
def test_matching_keys_by_keyword_or_tag() -> None:
    query = parse_qido_query({"PatientID": "P*", "0020000D": f"{STUDY},1.2.3",
                              "AccessionNumber": "A1", "ModalitiesInStudy": "CT"})
    assert query.filters == {
        "PatientID": TextMatch("P*"), "StudyInstanceUID": UidListMatch((STUDY, "1.2.3")),
        "AccessionNumber": TextMatch("A1"), "ModalitiesInStudy": CodeListMatch(("CT",))}
    assert query.matches({"PatientID": "P-7", "StudyInstanceUID": "1.2.3",
                          "AccessionNumber": "A1", "ModalitiesInStudy": ["SR", "CT"]})
    assert not query.matches({"PatientID": "Q-7", "StudyInstanceUID": "1.2.3",
                              "AccessionNumber": "A1", "ModalitiesInStudy": ["CT"]})
    assert not query.matches({})
    series = parse_qido_query([("SeriesInstanceUID", SERIES), ("00080060", "CT")], "series")
    assert series.filters == {"SeriesInstanceUID": UidListMatch((SERIES,)),
                              "Modality": CodeListMatch(("CT",))}
    assert series.matches({"SeriesInstanceUID": SERIES, "Modality": "CT"})


@pytest.mark.req("SRS-DCMW-005")
@pytest.mark.parametrize(("value", "start", "end"), [
    ("20240115", date(2024, 1, 15), date(2024, 1, 15)),
    ("20240101-20240131", date(2024, 1, 1), date(2024, 1, 31)),
    ("-20240131", None, date(2024, 1, 31)),
    ("20240101-", date(2024, 1, 1), None),
])
def test_study_date_single_and_ranges(value: str, start: date | None, end: date | None) -> None:
    match = parse_qido_query({"StudyDate": value}).filters["StudyDate"]
    assert match == DateRangeMatch(start, end)
    assert match.matches("20240115") and match.matches(date(2024, 1, 15))
    assert not match.matches(None) and not match.matches("") and not match.matches("garbage")
    assert match.matches("20231231") == (start is None)
    assert match.matches("20240201") == (end is None)


@pytest.mark.req("SRS-DCMW-005")
def test_wildcards_match_and_become_like_patterns() -> None:
    match = TextMatch("AB?C*")
    assert match.is_wildcard and match.matches("ABxC") and match.matches("AB.Cdef")
    assert not match.matches("ABC") and not match.matches("xABxC")
    assert TextMatch("50%_off*").like_pattern() == "50\\%\\_off%"
    assert TextMatch("A?").like_pattern() == "A_"
    assert not TextMatch("A.B").is_wildcard and not TextMatch("A.B").matches("AxB")
    assert TextMatch("*").matches("")


@pytest.mark.req("SRS-DCMW-005")
def test_paging_includefield_fuzzymatching_and_universal_matching() -> None:
    params = QueryParams("limit=5&offset=10&includefield=StudyDescription,00081030"
                         "&includefield=all&fuzzymatching=false&PatientID=&accept=x")
    query = parse_qido_query(params)
    assert (query.limit, query.offset, query.fuzzymatching) == (5, 10, False)
    assert query.include_all and query.include_fields == {"StudyDescription", "PatientID"}
    assert query.filters == {} and query.warnings == () and query.accept == "x"
    defaults = parse_qido_query({})
    assert (defaults.limit, defaults.offset, defaults.include_all) == (100, 0, False)
    assert parse_qido_query({"limit": "5000"}, max_limit=1000).limit == 1000
    fuzzy = parse_qido_query({"fuzzymatching": "true"})
    assert fuzzy.fuzzymatching and fuzzy.warnings == (FUZZY_WARNING,)


@pytest.mark.req("SRS-DCMW-005")
@pytest.mark.parametrize(("params", "words"), [
    ({"PatientNme": "x"}, "unknown matching key 'PatientNme'"),
    ({"FFFF0000": "x"}, "unknown matching key"),
    ({"PatientName": "x"}, "matching on PatientName is not supported"),
    ({"Modality": "CT"}, "use ModalitiesInStudy"),
    ({"SeriesInstanceUID": SERIES}, "not supported for a study search"),
    ({"includefield": "NoSuchThing"}, "unknown includefield"),
    ({"StudyDate": "2024-01-01"}, "not a date"),
    ({"StudyDate": "20240230"}, "not a date"),
    ({"StudyDate": "20240131-20240101"}, "ends before it starts"),
    ({"StudyDate": "-"}, "neither a start nor an end"),
    ({"StudyInstanceUID": "1.2.*"}, "wildcards are not allowed"),
    ({"ModalitiesInStudy": "ct"}, "code strings"),
    ({"PatientID": "a\\b"}, "single value"),
    ({"limit": "0"}, "limit must be an integer from 1 to"),
    ({"limit": "ten"}, "limit must be"),
    ({"offset": "-1"}, "offset must be"),
    ({"fuzzymatching": "maybe"}, "true or false"),
    ([("PatientID", "a"), ("00100020", "b")], "more than once"),
    ([("PatientID", ""), ("PatientID", "b")], "more than once"),
    ([("limit", "1"), ("limit", "2")], "more than once"),
])
def test_bad_queries_are_refused(params: Any, words: str) -> None:
    assert words in _bad(params)


@pytest.mark.req("SRS-DCMW-006")
def test_study_result_has_the_required_attributes_with_their_vrs() -> None:
    result = study_result(study_instance_uid=STUDY, number_of_study_related_series=2,
                          number_of_study_related_instances=120, modalities_in_study=["CT"],
                          study_date=date(2026, 1, 2), study_time=time(10, 11, 12),
                          accession_number="ACC1", patient_name="Doe^Jane", patient_id="P1",
                          patient_birth_date="19500101", patient_sex="F", study_id="7",
                          retrieve_url=f"https://dc/dicomweb/studies/{STUDY}",
                          extra={"StudyDescription": "CT ABDOMEN"})
    vrs = {tag: element["vr"] for tag, element in result.items()}
    assert vrs == {
        "00080020": "DA", "00080030": "TM", "00080050": "SH", "00080061": "CS",
        "00080090": "PN", "00081030": "LO", "00081190": "UR", "00100010": "PN",
        "00100020": "LO", "00100030": "DA", "00100040": "CS", "0020000D": "UI",
        "00200010": "SH", "00201206": "IS", "00201208": "IS"}
    assert list(result) == sorted(result)
    assert result["00080020"]["Value"] == ["20260102"]
    assert result["00080030"]["Value"] == ["101112"]
    assert result["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert result["00201208"]["Value"] == [120]
    assert "Value" not in result["00080090"]  # required, unknown: present and empty
    back = pydicom.Dataset.from_json(result)
    assert back.StudyInstanceUID == STUDY and back.ModalitiesInStudy == "CT"


@pytest.mark.req("SRS-DCMW-006")
def test_minimal_study_and_series_results() -> None:
    minimal = study_result(study_instance_uid=STUDY, number_of_study_related_series=0,
                           number_of_study_related_instances=0)
    assert "00081190" not in minimal  # not retrievable: no Retrieve URL
    assert {tag for tag, e in minimal.items() if "Value" not in e} == {
        "00080020", "00080030", "00080050", "00080061", "00080090", "00100010", "00100020",
        "00100030", "00100040", "00200010"}
    series = series_result(study_instance_uid=STUDY, series_instance_uid=SERIES, modality="CT",
                           number_of_series_related_instances=64, series_number=3,
                           series_description="SYNTH CONTRAST (AI)",
                           performed_procedure_step_start_date="20260101",
                           performed_procedure_step_start_time="101010",
                           retrieve_url=f"https://dc/dicomweb/studies/{STUDY}/series/{SERIES}")
    assert {tag: e["vr"] for tag, e in series.items()} == {
        "00080060": "CS", "0008103E": "LO", "00081190": "UR", "0020000D": "UI",
        "0020000E": "UI", "00200011": "IS", "00201209": "IS", "00400244": "DA",
        "00400245": "TM"}
    assert series["00200011"]["Value"] == [3] and series["00201209"]["Value"] == [64]
    bare = series_result(study_instance_uid=STUDY, series_instance_uid=SERIES, modality="CT",
                         number_of_series_related_instances=1)
    assert "Value" not in bare["00200011"] and "Value" not in bare["00400244"]


@pytest.mark.req("SRS-DCMW-006")
@pytest.mark.parametrize(("changes", "message"), [
    ({"study_instance_uid": "1.2/3"}, "not a UID"),
    ({"number_of_study_related_series": -1}, "non-negative integer"),
    ({"number_of_study_related_instances": True}, "non-negative integer"),
    ({"patient_sex": "X"}, "PatientSex"),
    ({"study_date": "2026-01-01"}, "not a date"),
    ({"study_time": "10:10"}, "not a time"),
    ({"modalities_in_study": "CT"}, "list of code strings"),
    ({"extra": {"NotAKeyword": 1}}, "not a DICOM keyword"),
    ({"extra": {"PatientID": "x"}}, "already set"),
])
def test_result_builders_refuse_bad_values(changes: dict, message: str) -> None:
    arguments = {"study_instance_uid": STUDY, "number_of_study_related_series": 1,
                 "number_of_study_related_instances": 1} | changes
    with pytest.raises(ValueError, match=message):
        study_result(**arguments)

"""QIDO-RS: query parameters (PS3.18 8.3.4) in, DICOM JSON results (PS3.18 10.6.3) out.

`parse_qido_query` turns the query string into typed filters keyed by attribute keyword; any
unknown or unsupported parameter, repeated key or malformed value is `QIDO_BAD_QUERY` (400).
The filters carry reference semantics (`matches`) and a SQL LIKE pattern for wildcards, so the
store can apply them. `study_result` and `series_result` build one result object from plain
values, with every required return attribute present (empty when unknown).
"""

import re
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.api.dicomweb.urls import is_uid

QidoLevel = Literal["study", "series", "instance"]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
FUZZY_WARNING = ("The fuzzymatching parameter is not supported. "
                 "Only literal matching has been performed.")

_CS = re.compile(r"[A-Z0-9 _]{1,16}")
_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


def _bad(detail: str) -> DicomWebError:
    return DicomWebError(DicomWebErrorCode.QIDO_BAD_QUERY, detail)


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UidListMatch:
    """UID list matching (PS3.4 C.2.2.2.2): the value is one of `uids`."""

    uids: tuple[str, ...]

    def matches(self, value: object) -> bool:
        return value is not None and str(value) in self.uids


@dataclass(frozen=True)
class TextMatch:
    """Single value matching, or wildcard matching with `*` and `?` (PS3.4 C.2.2.2.1, .4)."""

    pattern: str

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.pattern or "?" in self.pattern

    def matches(self, value: object) -> bool:
        if value is None:
            return False
        if not self.is_wildcard:
            return str(value) == self.pattern
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                        for c in self.pattern)
        return re.fullmatch(regex, str(value), flags=re.DOTALL) is not None

    def like_pattern(self, escape: str = "\\") -> str:
        """The pattern for SQL `LIKE ... ESCAPE '<escape>'`."""
        out = []
        for c in self.pattern:
            if c in ("%", "_", escape):
                out.append(escape + c)
            else:
                out.append("%" if c == "*" else "_" if c == "?" else c)
        return "".join(out)


@dataclass(frozen=True)
class DateRangeMatch:
    """Single date or range matching (PS3.4 C.2.2.2.5); an open end is None."""

    start: date | None
    end: date | None

    def matches(self, value: object) -> bool:
        day = _to_date(value)
        return day is not None and ((self.start is None or day >= self.start)
                                    and (self.end is None or day <= self.end))


@dataclass(frozen=True)
class CodeListMatch:
    """A code string (CS) value matching one of `codes`; for a multi-valued attribute such as
    Modalities in Study, any of its values matching is enough."""

    codes: tuple[str, ...]

    def matches(self, value: object) -> bool:
        if value is None:
            return False
        values = value if isinstance(value, Iterable) and not isinstance(value, str) else [value]
        return any(str(v) in self.codes for v in values)


Filter = UidListMatch | TextMatch | DateRangeMatch | CodeListMatch
_Kind = Literal["uid", "text", "date", "code"]

# Matching keys per level (PS3.18 Table 10.6.1-5). Series searches also match study keys.
STUDY_KEYS: dict[str, _Kind] = {
    "StudyInstanceUID": "uid", "PatientID": "text", "AccessionNumber": "text",
    "StudyDate": "date", "ModalitiesInStudy": "code",
}
SERIES_KEYS: dict[str, _Kind] = {"SeriesInstanceUID": "uid", "Modality": "code"}
INSTANCE_KEYS: dict[str, _Kind] = {"SOPInstanceUID": "uid"}
_CONTROL = {"limit", "offset", "includefield", "fuzzymatching", "accept"}


@dataclass(frozen=True)
class QidoQuery:
    """A parsed QIDO-RS query. `filters` maps keywords to filters; a key given empty (universal
    matching) filters nothing but is added to `include_fields`. `limit` is already capped at the
    parser's `max_limit`; `warnings` are texts for `Warning: 299` response headers."""

    level: QidoLevel
    filters: Mapping[str, Filter] = field(default_factory=dict)
    include_fields: frozenset[str] = frozenset()
    include_all: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    fuzzymatching: bool = False
    accept: str | None = None
    warnings: tuple[str, ...] = ()

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether a record (keyword -> plain value) satisfies every filter."""
        return all(f.matches(values.get(keyword)) for keyword, f in self.filters.items())


def parse_qido_query(params: Mapping[str, Any] | Iterable[tuple[str, str]],
                     level: QidoLevel = "study", *, max_limit: int = MAX_LIMIT) -> QidoQuery:
    """Parse query parameters given as a mapping, (key, value) pairs, or a Starlette
    `QueryParams` (repeated keys kept). Keys are keywords (`PatientID`) or tags (`00100020`)."""
    keys = (INSTANCE_KEYS if level == "instance" else
            STUDY_KEYS | (SERIES_KEYS if level == "series" else {}))
    filters: dict[str, Filter] = {}
    include: set[str] = set()
    include_all = False
    controls: dict[str, str] = {}
    matched: set[str] = set()
    for key, value in _pairs(params):
        if key == "includefield":
            for name in filter(None, (v.strip() for v in value.split(","))):
                if name == "all":
                    include_all = True
                else:
                    include.add(_attribute(name, "includefield"))
            continue
        if key in _CONTROL:
            if key in controls:
                raise _bad(f"the {key} parameter is given more than once")
            controls[key] = value
            continue
        keyword = _attribute(key, "matching key")
        if keyword not in keys:
            hint = (" (at study level, use ModalitiesInStudy)" if keyword == "Modality" else "")
            raise _bad(f"matching on {keyword} is not supported for a {level} search{hint}; "
                       f"supported keys: {', '.join(sorted(keys))}")
        if keyword in matched:
            raise _bad(f"the matching key {keyword} is given more than once")
        matched.add(keyword)
        if value == "":
            include.add(keyword)  # universal matching: return it, filter nothing
            continue
        filters[keyword] = _filter(keyword, keys[keyword], value)
    fuzzy = _boolean(controls.get("fuzzymatching", "false"), "fuzzymatching")
    limit = min(_count(controls["limit"], "limit", 1) if "limit" in controls else DEFAULT_LIMIT,
                max_limit)
    return QidoQuery(level=level, filters=filters, include_fields=frozenset(include),
                     include_all=include_all, limit=limit,
                     offset=_count(controls.get("offset", "0"), "offset", 0),
                     fuzzymatching=fuzzy, accept=controls.get("accept"),
                     warnings=(FUZZY_WARNING,) if fuzzy else ())


def _pairs(params: Mapping[str, Any] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    multi = getattr(params, "multi_items", None)
    if callable(multi):
        return [(str(k), str(v)) for k, v in multi()]
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, values in params.items()
                for v in (values if isinstance(values, list | tuple) else [values])]
    return [(str(k), str(v)) for k, v in params]


def _attribute(name: str, role: str) -> str:
    """The keyword of an attribute given by keyword or by 8-digit hexadecimal tag."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        keyword = keyword_for_tag(int(name, 16))
    else:
        keyword = name if tag_for_keyword(name) is not None else ""
    if not keyword:
        raise _bad(f"unknown {role} {name[:80]!r}: not a DICOM attribute keyword or tag")
    return keyword


def _filter(keyword: str, kind: _Kind, value: str) -> Filter:
    if kind == "uid":
        uids = tuple(v.strip() for v in re.split(r"[,\\]", value))
        if not all(is_uid(u) for u in uids):
            raise _bad(f"{keyword} must be one or more UIDs separated by commas; wildcards are "
                       "not allowed")
        return UidListMatch(uids)
    if kind == "date":
        return _date_range(keyword, value)
    if kind == "code":
        codes = tuple(v.strip() for v in re.split(r"[,\\]", value))
        if not all(_CS.fullmatch(c) for c in codes):
            raise _bad(f"{keyword} must be code strings (upper case letters, digits, "
                       "underscore) separated by commas")
        return CodeListMatch(codes)
    if len(value) > 64 or "\\" in value:
        raise _bad(f"{keyword} must be a single value of at most 64 characters")
    return TextMatch(value)


def _date_range(keyword: str, value: str) -> DateRangeMatch:
    low, dash, high = value.partition("-")
    if not dash:
        day = _parse_date(keyword, low)
        return DateRangeMatch(day, day)
    if not low and not high:
        raise _bad(f"{keyword} range {value!r} has neither a start nor an end")
    start = _parse_date(keyword, low) if low else None
    end = _parse_date(keyword, high) if high else None
    if start and end and start > end:
        raise _bad(f"{keyword} range {value!r} ends before it starts")
    return DateRangeMatch(start, end)


def _parse_date(keyword: str, text: str) -> date:
    try:
        if _DA.fullmatch(text):
            return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        pass
    raise _bad(f"{keyword} value {text!r} is not a date YYYYMMDD, nor a range "
               "YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-")


MAX_OFFSET = 10**9  # far beyond any site's results, well inside every database's integers
_ASCII_DIGITS = re.compile(r"[0-9]{1,12}")


def _count(text: str, name: str, minimum: int) -> int:
    # ASCII digits only: str.isdigit() also takes superscripts that int() refuses.
    if not _ASCII_DIGITS.fullmatch(text) or not minimum <= int(text) <= MAX_OFFSET:
        raise _bad(f"{name} must be an integer from {minimum} to {MAX_OFFSET}, "
                   f"not {text[:20]!r}")
    return int(text)


def _boolean(text: str, name: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise _bad(f"{name} must be true or false")
    return text.lower() == "true"


def _to_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DA.fullmatch(value):
        try:
            return datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            return None
    return None


# --- results ------------------------------------------------------------------------------

DateValue = date | str | None
TimeValue = time | str | None


def study_result(*, study_instance_uid: str, number_of_study_related_series: int,
                 number_of_study_related_instances: int,
                 modalities_in_study: Seq[str] = (), study_date: DateValue = None,
                 study_time: TimeValue = None, accession_number: str | None = None,
                 referring_physician_name: str | None = None, patient_name: str | None = None,
                 patient_id: str | None = None, patient_birth_date: DateValue = None,
                 patient_sex: str | None = None, study_id: str | None = None,
                 study_description: str | None = None, retrieve_url: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One study of a QIDO-RS response (PS3.18 Table 10.6.3-3) as DICOM JSON. Required
    attributes are always present (empty when None); Retrieve URL when retrievable; `extra`
    adds further attributes by keyword (includefield)."""
    if patient_sex not in (None, "", "M", "F", "O"):
        raise ValueError(f"PatientSex must be M, F, O or empty, not {patient_sex!r}")
    ds = Dataset()
    ds.StudyDate = _da(study_date, "StudyDate")
    ds.StudyTime = _tm(study_time, "StudyTime")
    ds.AccessionNumber = accession_number or ""
    ds.ModalitiesInStudy = _codes(modalities_in_study, "ModalitiesInStudy")
    ds.ReferringPhysicianName = referring_physician_name or ""
    if study_description is not None:
        ds.StudyDescription = study_description
    if retrieve_url:
        ds.RetrieveURL = retrieve_url
    ds.PatientName = patient_name or ""
    ds.PatientID = patient_id or ""
    ds.PatientBirthDate = _da(patient_birth_date, "PatientBirthDate")
    ds.PatientSex = patient_sex or ""
    ds.StudyInstanceUID = _uid(study_instance_uid, "StudyInstanceUID")
    ds.StudyID = study_id or ""
    ds.NumberOfStudyRelatedSeries = _number(number_of_study_related_series,
                                            "NumberOfStudyRelatedSeries")
    ds.NumberOfStudyRelatedInstances = _number(number_of_study_related_instances,
                                               "NumberOfStudyRelatedInstances")
    return _json(ds, extra)


def series_result(*, study_instance_uid: str, series_instance_uid: str, modality: str,
                  number_of_series_related_instances: int, series_number: int | None = None,
                  series_description: str | None = None,
                  performed_procedure_step_start_date: DateValue = None,
                  performed_procedure_step_start_time: TimeValue = None,
                  retrieve_url: str | None = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One series of a QIDO-RS response (PS3.18 Table 10.6.3-4) as DICOM JSON, with its Study
    Instance UID so that results of an all-series search can be grouped."""
    ds = Dataset()
    ds.Modality = _codes([modality], "Modality")[0]
    ds.SeriesDescription = series_description or ""
    if retrieve_url:
        ds.RetrieveURL = retrieve_url
    ds.StudyInstanceUID = _uid(study_instance_uid, "StudyInstanceUID")
    ds.SeriesInstanceUID = _uid(series_instance_uid, "SeriesInstanceUID")
    ds.SeriesNumber = "" if series_number is None else _number(series_number, "SeriesNumber")
    ds.NumberOfSeriesRelatedInstances = _number(number_of_series_related_instances,
                                                "NumberOfSeriesRelatedInstances")
    ds.PerformedProcedureStepStartDate = _da(performed_procedure_step_start_date,
                                             "PerformedProcedureStepStartDate")
    ds.PerformedProcedureStepStartTime = _tm(performed_procedure_step_start_time,
                                             "PerformedProcedureStepStartTime")
    return _json(ds, extra)


def _json(ds: Dataset, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    for keyword, value in (extra or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"extra attribute {keyword!r} is not a DICOM keyword")
        if keyword in ds:
            raise ValueError(f"extra attribute {keyword} is already set by the builder")
        setattr(ds, keyword, "" if value is None else value)
    json = ds.to_json_dict()
    return {tag: json[tag] for tag in sorted(json)}  # tag order, as in a data set


def _uid(value: str, keyword: str) -> str:
    if not is_uid(value):
        raise ValueError(f"{keyword} {value!r} is not a UID")
    return value


def _number(value: int, keyword: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{keyword} must be a non-negative integer, not {value!r}")
    return value


def _codes(values: Seq[str], keyword: str) -> list[str]:
    if isinstance(values, str) or not all(isinstance(v, str) and _CS.fullmatch(v)
                                          for v in values):
        raise ValueError(f"{keyword} must be a list of code strings, not {values!r}")
    return list(values)


def _da(value: DateValue, keyword: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if _to_date(value) is None:
        raise ValueError(f"{keyword} {value!r} is not a date YYYYMMDD")
    return value


def _tm(value: TimeValue, keyword: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, time):
        return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond
                                           else "")
    if not _TM.fullmatch(value):
        raise ValueError(f"{keyword} {value!r} is not a time HHMMSS[.FFFFFF]")
    return value

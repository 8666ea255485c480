"""The known-anomaly review of each SOUP item as a record of its own (IEC 62304 7.1.2 c, 8.1.2):
`qms/soup/reviews/<canonical name>.yaml`, one per item of `qms/soup.yaml` (direct and
platform), saying when, by which role, for which version, what was consulted and what was not,
with the result, the anomalies found and their relevance.

A review is `complete` only when every source it planned was consulted; a review that could not
reach a source says so (`incomplete`) and lists the source under `sources_not_consulted` with
the reason. `check_reviews` refuses a missing, stale or wrong-version review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from packaging.utils import canonicalize_name
from pydantic import Field, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.records import QMS_DIR
from digital_contrast.qms.requirements import Text
from digital_contrast.qms.yaml_records import Problem, YamlDocument, display_path

REVIEWS_DIR = QMS_DIR / "soup" / "reviews"
# Known-anomaly lists change weekly; a review older than a year is no review (8.1.2). DC-MPR
# §2.3 asks for an online review before each release besides.
REVIEW_MAX_AGE_DAYS = 365


class Anomaly(FrozenSchema):
    id: Text  # advisory / issue id, or a one-line summary
    relevance: Text  # does the code path we use reach it?
    assessment: Text  # what follows for the device


class Consulted(FrozenSchema):
    source: Text  # a URL, a local file or a tool with its version
    result: Text  # what it gave for this version


class NotConsulted(FrozenSchema):
    source: Text
    reason: Text


class Review(FrozenSchema):
    item: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    version: Annotated[str, StringConstraints(min_length=1)]  # the version reviewed
    date: date
    reviewer_role: Text
    sources_consulted: list[Consulted] = Field(min_length=1)
    sources_not_consulted: list[NotConsulted]
    result: Literal["complete", "incomplete"]
    anomalies: list[Anomaly]  # 7.1.2 c): those that touch the device, with their relevance
    conclusion: Text

    @model_validator(mode="after")
    def _honest_result(self) -> Review:
        if self.result == "incomplete" and not self.sources_not_consulted:
            raise ValueError("an incomplete review names the sources it could not consult")
        if self.result == "complete" and self.sources_not_consulted:
            raise ValueError("a review with sources not consulted is incomplete")
        return self

    def sources(self) -> list[str]:
        return ([s.source for s in self.sources_consulted]
                + [s.source for s in self.sources_not_consulted])


@dataclass(frozen=True)
class ReviewRecord:
    doc: YamlDocument
    review: Review


def review_path(name: str, folder: Path = REVIEWS_DIR) -> Path:
    return Path(folder) / f"{canonicalize_name(name)}.yaml"


def load_reviews(folder: Path = REVIEWS_DIR) -> tuple[dict[str, ReviewRecord], list[Problem]]:
    """Every review record by canonical item name, with each schema problem at its line; a
    file not named after its item is reported (one file per item, found by its name)."""
    records: dict[str, ReviewRecord] = {}
    problems: list[Problem] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        doc, review, found = YamlDocument.load_as(path, Review)
        problems += found
        if doc is None or review is None:
            continue
        if path.name != review_path(review.item, folder).name:
            problems.append(doc.problem(("item",), f"review record of {review.item} must be "
                                        f"named {review_path(review.item, folder).name}"))
            continue
        records[canonicalize_name(review.item)] = ReviewRecord(doc, review)
    return records, problems


def check_reviews(soup_doc: YamlDocument, items: list[tuple[tuple[str, int], str, str, str]],
                  records: dict[str, ReviewRecord], today: date,
                  folder: Path = REVIEWS_DIR) -> list[Problem]:
    """`items`: (location in soup.yaml, name, version in use, its anomaly_source) of every SOUP
    item. Each needs a review of that version, at most REVIEW_MAX_AGE_DAYS old, that names its
    anomaly source as consulted or not; a review of no item is reported too."""
    problems: list[Problem] = []
    for at, name, in_use, anomaly_source in items:
        record = records.get(canonicalize_name(name))
        if record is None:
            problems.append(soup_doc.problem((*at, "name"), f"{name}: no anomaly review record "
                                             f"({display_path(review_path(name, folder))})"))
            continue
        doc, review = record.doc, record.review
        if review.version != in_use:
            problems.append(doc.problem(("version",), f"{name}: the anomaly review is for "
                                        f"version {review.version}, but {in_use} is in use"))
        age = (today - review.date).days
        if age < 0:
            problems.append(doc.problem(("date",), f"{name}: anomaly review dated {review.date}"
                                        ", in the future"))
        elif age > REVIEW_MAX_AGE_DAYS:
            problems.append(doc.problem(("date",), f"{name}: anomaly review of {review.date} "
                                        f"is {age} days old (at most {REVIEW_MAX_AGE_DAYS})"))
        if anomaly_source not in review.sources():
            problems.append(doc.problem(("sources_consulted",), f"{name}: the anomaly source "
                                        f"{anomaly_source} is neither consulted nor listed as "
                                        "not consulted"))
    assessed = {canonicalize_name(name) for _, name, _, _ in items}
    problems += [r.doc.problem(("item",), f"anomaly review of {r.review.item}, which is not a "
                               "SOUP item of qms/soup.yaml")
                 for key, r in records.items() if key not in assessed]
    return problems

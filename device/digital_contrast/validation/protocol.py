"""Validation protocols (`validation/protocols/*.yaml`): use case, dataset, acceptance criteria.

A protocol is read once, from bytes whose SHA-256 is fixed before any case runs; the criteria
applied are parsed from exactly those bytes, and the file is hashed again after the last case,
so criteria cannot move once results have been seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.model.validation_record import PRIMARY, Rule
from digital_contrast.phantom.extensions import BASE_USE_CASE
from digital_contrast.qms.yaml_records import YamlDocument, display_path
from digital_contrast.validation.errors import ValidationRunError
from digital_contrast.validation.metrics import (
    ABDOMEN_PV,
    METRICS,
    PHANTOM_STRATA,
    SHIFT,
)

ProtocolId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")]


class SeedRange(FrozenSchema):
    start: int = Field(ge=0)
    count: int = Field(ge=1, le=10_000)

    @property
    def seeds(self) -> range:
        return range(self.start, self.start + self.count)


class ShiftSet(FrozenSchema):
    """Cases drawn beyond the training distribution (`validation.cases.shift_overrides` says
    how, per phantom extension): the first `cases` of `seeds` that qualify, stratum `shift`."""

    seeds: SeedRange
    cases: int = Field(ge=1, le=1000)
    description: str = Field(min_length=1)


class PhantomDataset(FrozenSchema):
    """Cases rendered by the procedural phantom: evidence about the pipeline, not patients.
    With `cases_per_stratum`, `seeds` is a pool walked in order, taking the first that many
    cases of every stratum (their strata follow from the sampled parameters alone).
    `extension` names the phantom extension of the cases (a use case id; none: the base
    phantom, aaa-cta), which decides their strata and metrics; `shift` adds a shift set."""

    generator: Literal["digital_contrast.phantom"]
    size: Literal["small", "clinical"]
    seeds: SeedRange
    cases_per_stratum: int | None = Field(None, ge=1, le=1000)
    extension: Literal["abdomen-pv"] | None = None
    shift: ShiftSet | None = None

    @field_validator("shift")
    @classmethod
    def _shift_defined(cls, shift: ShiftSet | None, info: ValidationInfo) -> ShiftSet | None:
        if shift is not None and info.data.get("extension") != ABDOMEN_PV:
            raise ValueError("a shift set is defined for the abdomen-pv extension only")
        if shift is not None:
            main, extra = info.data.get("seeds"), shift.seeds.seeds
            if main is not None and set(main.seeds) & set(extra):
                raise ValueError("the shift set's seeds overlap the dataset's seeds")
        return shift

    @property
    def kind(self) -> str:
        return "phantom"

    @property
    def phantom(self) -> str:
        """The phantom use case of the cases."""
        return self.extension or BASE_USE_CASE

    @property
    def main_strata(self) -> tuple[str, ...]:
        return tuple(PHANTOM_STRATA[self.phantom])

    @property
    def strata(self) -> tuple[str, ...]:
        return self.main_strata + ((SHIFT,) if self.shift else ())

    def describe(self) -> str:
        seeds = self.seeds.seeds
        pool = f"phantom seeds {seeds.start}-{seeds.stop - 1} (held out)"
        if self.extension:
            pool = f"{self.extension} {pool}"
        if self.cases_per_stratum:
            pool = (f"the first {self.cases_per_stratum} cases of each of "
                    f"{len(self.main_strata)} strata from {pool}")
        if self.shift:
            extra = self.shift.seeds.seeds
            pool += (f", and a shift set of {self.shift.cases} cases from seeds "
                     f"{extra.start}-{extra.stop - 1}")
        return f"{pool}, {self.size} size"


class PairedDataset(FrozenSchema):
    """A site's own paired cases: `<folder>/<case>/ncct/` and `<case>/cect/`, DICOM series
    (folders or zips) on the same grid; the CECT is the reference."""

    folder: Path
    description: str = Field(min_length=1)

    @property
    def kind(self) -> str:
        return "paired"

    @property
    def strata(self) -> tuple[str, ...]:
        return (PRIMARY,)

    def describe(self) -> str:
        return f"paired cases in {self.folder}: {self.description}"


class CohortDataset(FrozenSchema):
    """A repository cohort of native + contrast pairs as `repository export --files` wrote it
    (`manifest`: the batch manifest, relative to the protocol's folder or absolute). The
    protocol revision names the cohort version's hash and the export's SHA-256, so it
    validates on exactly that cohort and export; each pair's contrast series is the reference,
    resampled onto the native grid."""

    generator: Literal["digital_contrast.repository"]
    manifest: Path
    cohort_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    description: str = Field(min_length=1)

    @property
    def kind(self) -> str:
        return "paired"  # label-free metrics, as a site's own pairs

    @property
    def strata(self) -> tuple[str, ...]:
        return (PRIMARY,)

    def describe(self) -> str:
        return (f"repository cohort {self.cohort_sha256[:12]} (export "
                f"{self.manifest_sha256[:12]}): {self.description}")


Dataset = PhantomDataset | PairedDataset | CohortDataset


class Revision(FrozenSchema):
    version: int = Field(ge=1)
    date: dt.date | None = None
    change: str = Field(min_length=1)
    rationale: str | None = None


class Protocol(FrozenSchema):
    id: ProtocolId
    version: int = Field(ge=1)
    use_case: str
    evidence: str = Field(min_length=1)
    dataset: Dataset
    reference: str = Field(min_length=1)
    primary_stratum: str = Field(min_length=1)
    acceptance: list[Rule] = Field(min_length=1)
    revisions: list[Revision] = Field(min_length=1)

    # Field validators (not one model validator) so that a problem is reported at its line.
    @field_validator("dataset")
    @classmethod
    def _cases_of_the_use_case(cls, dataset: Dataset, info: ValidationInfo) -> Dataset:
        use_case = info.data.get("use_case")
        if (isinstance(dataset, PhantomDataset) and dataset.extension is not None
                and use_case is not None and dataset.extension != use_case):
            raise ValueError(f"the dataset's phantom extension {dataset.extension!r} is not "
                             f"this protocol's use case {use_case!r}")
        return dataset

    @field_validator("acceptance")
    @classmethod
    def _measurable(cls, rules: list[Rule], info: ValidationInfo) -> list[Rule]:
        dataset = info.data.get("dataset")
        for index, rule in enumerate(rules):
            metric = METRICS.get(rule.metric)
            if metric is None:
                raise ValueError(f"rule {index}: metric {rule.metric!r} is unknown; known: "
                                 f"{', '.join(sorted(METRICS))}")
            if dataset is not None and dataset.kind not in metric.datasets:
                raise ValueError(f"rule {index}: metric {rule.metric!r} needs "
                                 f"{' or '.join(metric.datasets)} cases; this dataset is "
                                 f"{dataset.kind}")
            if (isinstance(dataset, PhantomDataset) and "paired" not in metric.datasets
                    and dataset.phantom not in metric.phantoms):
                raise ValueError(f"rule {index}: metric {rule.metric!r} is measured on "
                                 f"{' or '.join(metric.phantoms)} phantom cases; this dataset "
                                 f"is {dataset.phantom}")
            if dataset is not None and rule.stratum not in dataset.strata:
                raise ValueError(f"rule {index}: stratum {rule.stratum!r} is unknown; this "
                                 f"dataset has {', '.join(dataset.strata)}")
        return rules

    @field_validator("revisions")
    @classmethod
    def _current(cls, revisions: list[Revision], info: ValidationInfo) -> list[Revision]:
        version = info.data.get("version")
        if version is not None and revisions[-1].version != version:
            raise ValueError(f"the last revision is {revisions[-1].version}, but the protocol "
                             f"is version {version}: record the change")
        return revisions


@dataclass(frozen=True)
class FixedProtocol:
    """A protocol with the hash of the bytes it was parsed from."""

    path: Path
    protocol: Protocol
    sha256: str

    @property
    def name(self) -> str:
        return display_path(self.path)

    def check_unchanged(self) -> None:
        """PROTOCOL_CHANGED when the file no longer has the hash fixed at the start."""
        try:
            now = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            now = "unreadable"
        if now != self.sha256:
            raise ValidationRunError(
                "PROTOCOL_CHANGED", f"{self.name} changed during the run (SHA-256 "
                f"{self.sha256[:12]} at the start, {now[:12]} now); no record is written")


def load_protocol(path: Path) -> FixedProtocol:
    """The protocol, hashed and parsed from one read; PROTOCOL_INVALID names file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationRunError("PROTOCOL_NOT_FOUND",
                                 f"{display_path(path)} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
        data = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ValidationRunError("PROTOCOL_INVALID", f"{display_path(path)}{where}: not valid "
                                 f"YAML ({getattr(exc, 'problem', None) or exc})") from None
    protocol, problems = YamlDocument(path, text, data).validate((), data, Protocol)
    if protocol is None:
        raise ValidationRunError("PROTOCOL_INVALID", "; ".join(map(str, problems)))
    return FixedProtocol(path, protocol, hashlib.sha256(raw).hexdigest())

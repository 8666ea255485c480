"""The ISO 14971 risk file's records: the policy (scales and acceptability matrix), risks and
risk controls.

`risk/policy.yaml` holds the severity and probability scales and the acceptability matrix,
`risk/risks/RISK-NNN.yaml` one risk each (hazard -> sequence of events -> hazardous situation
-> harm, initial and residual severity/probability, controls), `risk/controls.yaml` the risk
control measures (RC-NNN) with the requirements that implement them, the tests that verify
them and the evidence of their effectiveness. Levels are computed from the matrix, never read
from a record; a residual probability in a risk record is a claim, checked against the
probability computed from the controls' evidence (`qms.risk.residual`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.qms.requirements import RequirementId, Text

SeverityId = Annotated[str, StringConstraints(pattern=r"^S\d$")]
ProbabilityId = Annotated[str, StringConstraints(pattern=r"^P\d$")]
RiskId = Annotated[str, StringConstraints(pattern=r"^RISK-\d{3}$")]
ControlId = Annotated[str, StringConstraints(pattern=r"^RC-\d{3}$")]
# A pytest node id or a prefix of one: a test file, a test, a parametrised case.
TestRef = Annotated[str, StringConstraints(pattern=r"^tests/[\w/.-]+\.py(::\S+)?$")]


class Level(StrEnum):
    ACCEPTABLE = "acceptable"
    ALARP = "alarp"  # reduced as far as possible; accepted only with a benefit-risk analysis
    UNACCEPTABLE = "unacceptable"


UNDEFINED = "undefined"  # a (severity, probability) pair the matrix does not define
LEVEL_LABELS = {Level.ACCEPTABLE: "acceptable", Level.ALARP: "ALARP",
                Level.UNACCEPTABLE: "unacceptable", UNDEFINED: "undefined"}


class ControlType(StrEnum):
    """The three options of ISO 14971 7.1, in their order of priority."""

    INHERENT = "inherent-safety-by-design"
    PROTECTIVE = "protective-measure"
    INFORMATION = "information-for-safety"


class Threat(StrEnum):
    """STRIDE categories, for the security risks of the threat model (IEC 81001-5-1)."""

    SPOOFING = "spoofing"
    TAMPERING = "tampering"
    REPUDIATION = "repudiation"
    DISCLOSURE = "information-disclosure"
    DENIAL = "denial-of-service"
    ELEVATION = "elevation-of-privilege"


class SeverityLevel(FrozenSchema):
    id: SeverityId
    name: Text
    definition: Text


class ProbabilityLevel(FrozenSchema):
    """A probability band [lower, upper) per use; the last band includes its upper edge."""

    id: ProbabilityId
    name: Text
    frequency: Text
    definition: Text
    lower: float = Field(ge=0.0, le=1.0)
    upper: float = Field(gt=0.0, le=1.0)


class Policy(FrozenSchema):
    id: Annotated[str, StringConstraints(pattern=r"^DC-[A-Z]+$")]
    title: Text
    basis: list[Text] = Field(min_length=1)
    scope: Text
    software_safety_class: Literal["A", "B", "C"]
    safety_class_rationale: Text
    probability_basis: Text
    severity: list[SeverityLevel] = Field(min_length=1)
    probability: list[ProbabilityLevel] = Field(min_length=1)
    acceptability: dict[SeverityId, dict[ProbabilityId, Level]]
    residual_risk_policy: Text
    # How a control's failure bound and a risk's residual probability are computed, and why.
    evidence_policy: Text
    benefit_risk_policy: Text
    overall_residual_risk_policy: Text

    def level(self, severity: str, probability: str) -> str:
        return self.acceptability.get(severity, {}).get(probability, UNDEFINED)

    def band(self, probability: float) -> str:
        """The id of the band holding `probability` (the last band's upper edge included)."""
        for level in self.probability:
            if level.lower <= probability < level.upper:
                return level.id
        last = self.probability[-1]
        return last.id if probability == last.upper else UNDEFINED

    def upper_edge(self, probability_id: str) -> float | None:
        return next((p.upper for p in self.probability if p.id == probability_id), None)


class Independence(FrozenSchema):
    """Why some of a risk's controls fail independently: only then is the product of their
    failure bounds a bound on all of them failing together."""

    controls: list[ControlId] = Field(min_length=2)
    argument: Text


class Estimate(FrozenSchema):
    severity: SeverityId
    probability: ProbabilityId


class Risk(FrozenSchema):
    id: RiskId
    title: Text
    hazard: Text
    causes: list[Text] = Field(min_length=1)
    sequence_of_events: list[Text] = Field(min_length=1)
    hazardous_situation: Text
    harm: Text
    threats: list[Threat] = Field(default_factory=list)
    initial: Estimate
    # Empty or absent is a gap the check reports at its line, not a schema error.
    controls: list[ControlId] = Field(default_factory=list)
    independence: Independence | None = None
    # The residual probability is a claim: `qms check` reports it when it is lower than the
    # probability the controls' evidence supports.
    residual: Estimate
    benefit_risk: Text | None = None
    notes: Text | None = None
    # Bound by the loader: a level only exists with respect to a policy's matrix.
    _policy: Policy | None = PrivateAttr(default=None)

    def _level(self, estimate: Estimate) -> str:
        if self._policy is None:
            raise RuntimeError(f"{self.id} is not bound to a risk policy; use load_risk_file")
        return self._policy.level(estimate.severity, estimate.probability)

    @property
    def initial_level(self) -> str:
        return self._level(self.initial)

    @property
    def residual_level(self) -> str:
        return self._level(self.residual)


class TestsEvidence(FrozenSchema):
    """The control's verifying test cases in the test run: n that ran, x that failed."""

    __test__ = False  # a record, not a test class
    kind: Literal["tests"]


# A metric or stratum name of a validation protocol.
ProtocolName = Annotated[str, StringConstraints(pattern=r"^[\w.-]+$")]


class CriterionRef(FrozenSchema):
    metric: ProtocolName
    stratum: ProtocolName = "primary"

    def describe(self) -> str:
        return f"{self.metric} ({self.stratum})"


class ValidationEvidence(FrozenSchema):
    """Named per-case criteria of a signed validation record: n cases, x failing cases."""

    kind: Literal["validation"]
    record: Annotated[str, StringConstraints(pattern=r"^validation/\S+\.json$")]
    criteria: list[CriterionRef] = Field(min_length=1)


class FieldEvidence(FrozenSchema):
    """A field-data record (post-market surveillance) with its counts of uses and failures."""

    kind: Literal["field"]
    record: Annotated[str, StringConstraints(pattern=r"^risk/field/\S+\.yaml$")]


Evidence = Annotated[TestsEvidence | ValidationEvidence | FieldEvidence,
                     Field(discriminator="kind")]


class FieldRecord(FrozenSchema):
    """risk/field/*.yaml: what the field showed for one control over one period."""

    control: ControlId
    source: Text
    period: Text
    uses: int = Field(ge=1)
    failures: int = Field(ge=0)

    @model_validator(mode="after")
    def _counts(self) -> FieldRecord:
        if self.failures > self.uses:
            raise ValueError(f"failures ({self.failures}) exceed uses ({self.uses})")
        return self


class Control(FrozenSchema):
    id: ControlId
    title: Text
    type: ControlType
    description: Text
    implemented_by: list[RequirementId] = Field(default_factory=list)
    verified_by: list[TestRef] = Field(default_factory=list)
    # Evidence of effectiveness, or the reason there is none (then the control gets no credit:
    # its failure bound is 1).
    evidence: list[Evidence] = Field(default_factory=list)
    no_credit: Text | None = None

    @model_validator(mode="after")
    def _evidence_or_reason(self) -> Control:
        if bool(self.evidence) == bool(self.no_credit):
            raise ValueError("give either evidence (tests, validation, field) or no_credit "
                             "(why there is no quantitative evidence of effectiveness)")
        return self

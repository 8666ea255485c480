"""The validation record: the evidence that one exact bundle met its protocol's acceptance
criteria, signed by `digital-contrast validate` (Ed25519, purpose "validation-record").

Promotion needs a passing, signed record for that bundle hash under the use case's current
protocol (`model.gate`), and the core checks it again whenever it loads a bundle. A record is
stored and moved only as its signed bytes; one without a signature is refused (RECORD_UNSIGNED).
"""

import hashlib
import json
import math
import operator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError, computed_field

from digital_contrast import __version__
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.signing import Signer, TrustedKeys, unverified_payload
from digital_contrast.model.explain_evidence import ExplainEvidence

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
PURPOSE = "validation-record"
PRIMARY = "primary"
PRODUCER = "digital-contrast validate"
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


class Rule(FrozenSchema):
    """One acceptance criterion of a protocol: `statistic` of `metric` over the completed
    cases of `stratum` compared with `threshold`. median: the median case; worst: every case
    (the worst one decides); mean: the mean, e.g. the fraction of cases labelled LOW
    CONFIDENCE."""

    metric: str
    op: Literal[">=", "<=", ">", "<"]
    threshold: float
    stratum: str = PRIMARY
    statistic: Literal["median", "worst", "mean"] = "median"

    @property
    def terms(self) -> tuple[str, str, float, str, str]:
        return (self.metric, self.op, self.threshold, self.stratum, self.statistic)

    def describe(self) -> str:
        return (f"{self.statistic} {self.metric} {self.op} {self.threshold:g} "
                f"({self.stratum})")


class Criterion(Rule):
    value: float | None  # None: the metric could not be measured, which never passes

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return self.value is not None and not math.isnan(self.value) and \
            bool(_OPS[self.op](self.value, self.threshold))


class ValidationRecord(FrozenSchema):
    bundle_sha256: Sha256
    use_case: str
    model_name: str
    model_version: str
    protocol: str  # path of the protocol in validation/protocols
    protocol_sha256: Sha256
    # The git commit the protocol was committed in when `validate` ran.
    protocol_commit: str | None = Field(None, pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
    run_id: str | None = None  # the validation run (its folder under the build directory)
    produced_by: str = PRODUCER
    dataset: str  # what was evaluated, e.g. "phantom seeds 9000-9039 (held out)"
    criteria: list[Criterion] = Field(min_length=1)
    evidence: str  # e.g. "procedural phantom only; not clinically validated"
    # Uncertainty calibration and attribution sanity checks (explain); None: not calibrated.
    explain: ExplainEvidence | None = None
    software_version: str = __version__
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    def signed(self, signer: Signer) -> bytes:
        """The signed document of this record (what is stored, attached and committed)."""
        return signer.sign_document(PURPOSE, json.loads(self.model_dump_json()))

    def save_signed(self, path: Path, signer: Signer) -> bytes:
        raw = self.signed(signer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        return raw

    @classmethod
    def from_payload(cls, data: dict, what: str) -> "ValidationRecord":
        data = dict(data)
        data.pop("passed", None)  # derived from the criteria, never trusted from the file
        data["criteria"] = [{k: v for k, v in c.items() if k != "passed"}
                            for c in data.get("criteria", []) if isinstance(c, dict)]
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise KeysError("SIGNATURE_INVALID", f"{what} is signed but not a validation "
                            f"record ({exc.error_count()} problems)") from None


@dataclass(frozen=True)
class SignedRecord:
    """A record as verified from its signed bytes."""

    record: ValidationRecord
    raw: bytes
    key_id: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @classmethod
    def verify(cls, raw: bytes, trust: TrustedKeys, what: str) -> "SignedRecord":
        """RECORD_UNSIGNED, SIGNER_UNTRUSTED or SIGNATURE_INVALID unless `raw` is a record
        signed by a trusted key."""
        payload, key_id = trust.open_document(raw, PURPOSE, what)
        return cls(ValidationRecord.from_payload(payload, what), raw, key_id)

    @classmethod
    def read(cls, path: Path, trust: TrustedKeys, what: str | None = None) -> "SignedRecord":
        return cls.verify(Path(path).read_bytes(), trust, what or str(path))


def unverified_record(path: Path) -> ValidationRecord:
    """The record in a file, signed or not, WITHOUT verifying any signature: for reading the
    evidence a record reports (calibration input, reports), never for a gate."""
    data = unverified_payload(json.loads(Path(path).read_text("utf-8")))
    return ValidationRecord.from_payload(data, str(path))

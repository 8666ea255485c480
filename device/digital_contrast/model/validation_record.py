"""The validation record: the evidence that one exact bundle met its protocol's acceptance
criteria. Promotion to production needs a passing record for that bundle hash, and the core
checks the record again whenever it loads a bundle."""

import json
import math
import operator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, computed_field

from digital_contrast import __version__
from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.model.explain_evidence import ExplainEvidence

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


class Criterion(FrozenSchema):
    metric: str
    op: Literal[">=", "<=", ">", "<"]
    threshold: float
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
    # The git commit the protocol was committed in when `validate` ran (None: a record made
    # before protocols were bound to commits, or not by `validate`).
    protocol_commit: str | None = Field(None, pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")
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

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> "ValidationRecord":
        data = json.loads(Path(path).read_text("utf-8"))
        # `passed` is derived from the criteria, never trusted from the file.
        data.pop("passed", None)
        for criterion in data.get("criteria", []):
            criterion.pop("passed", None)
        return cls.model_validate(data)

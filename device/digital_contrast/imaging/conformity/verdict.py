"""The conformity verdict: every check that ran, passed or not, with what it measured."""

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from digital_contrast.errors import DigitalContrastError


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # refuses the input
    WARNING = "warning"  # flagged on the result; does not refuse


@dataclass(frozen=True)
class CheckResult:
    code: str  # stable, e.g. CONF_CONTRAST_IN_AORTA; the same code whatever the outcome
    check: str  # short name of what was checked
    outcome: Outcome
    measured: str
    expected: str
    message: str = ""  # for the technologist; empty when passed


@dataclass(frozen=True)
class Verdict:
    use_case: str
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome is Outcome.FAILED]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome is Outcome.WARNING]

    def to_dict(self) -> dict:
        return {"use_case": self.use_case, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}


class ConformityError(DigitalContrastError):
    """The input is outside the use case's intended-use envelope. `code` is the first failure's;
    `verdict` holds them all."""

    def __init__(self, verdict: Verdict) -> None:
        first = verdict.failures[0]
        others = len(verdict.failures) - 1
        detail = first.message + (f" (and {others} more failed check(s))" if others else "")
        super().__init__(first.code, detail)
        self.verdict = verdict

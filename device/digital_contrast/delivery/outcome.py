"""What one attempt at a delivery came to, whichever the protocol."""

from dataclasses import dataclass, field


@dataclass
class SendOutcome:
    sent: int = 0  # instances the peer accepted (success or warning status)
    problems: list[str] = field(default_factory=list)  # statuses and codes, never PHI
    retryable: bool = True  # False: the peer refused for good; an operator must act

    @property
    def delivered(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return f"{self.sent} instance(s) accepted; {shown}{more}"

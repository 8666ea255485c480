"""The ISO 14971 risk management file as data: schema, loading, control failure bounds from
evidence, computed residual risk, gap checks and the risk management report. Every problem
names its file and line.

The names below are the item's interface to the command line, `qms check` and release records.
"""

from digital_contrast.qms.risk.check import check_risk_file
from digital_contrast.qms.risk.load import RISK_DIR, RiskFile, load_risk_file
from digital_contrast.qms.risk.report import write_risk_report
from digital_contrast.qms.risk.residual import overall_residual_risk


def risk_blockers(risk_file: RiskFile, test_outcomes: dict[str, str],
                  requirement_tests: dict[str, list[str]], *,
                  accepted: frozenset[str] = frozenset()) -> list[str]:
    """The residual risks that bar a clinical claim (computed unacceptable, or ALARP without a
    demonstrated benefit); unverified controls are `qms check` problems, not listed here."""
    return list(overall_residual_risk(risk_file, test_outcomes, requirement_tests,
                                      accepted=accepted)["blockers"])


__all__ = ["RISK_DIR", "RiskFile", "check_risk_file", "load_risk_file", "overall_residual_risk",
           "risk_blockers", "write_risk_report"]

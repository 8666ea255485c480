"""The ISO 14971 risk management file as data: schema, loading, gap checks and the risk
management report. Every problem names its file and line.

The names below are the item's interface to the command line, `qms check` and release records.
"""

from digital_contrast.qms.risk.check import check_risk_file
from digital_contrast.qms.risk.load import RISK_DIR, RiskFile, load_risk_file
from digital_contrast.qms.risk.report import write_risk_report

__all__ = ["RISK_DIR", "RiskFile", "check_risk_file", "load_risk_file", "write_risk_report"]

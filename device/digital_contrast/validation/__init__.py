"""Validation (IEC 62304 software item SI-VALIDATION): protocols from validation/protocols/ run
through the clinical DICOM path into validation records and reports.

`run_validation(load_protocol(path), model, out)` runs one protocol on a model (a registered
version or a bundle folder under validation) and writes `<out>/<run-id>/`: validation_record.json
(what the promotion gate and the load-time check read), run.json, cases.csv, report.html and
report.pdf.
"""

from digital_contrast.validation.errors import ValidationRunError
from digital_contrast.validation.protocol import FixedProtocol, Protocol, load_protocol
from digital_contrast.validation.protocol_run import run_validation
from digital_contrast.validation.results import ValidationRun

__all__ = ["FixedProtocol", "Protocol", "ValidationRun", "ValidationRunError", "load_protocol",
           "run_validation"]

"""Where the quality records live and how a malformed one is reported."""

from digital_contrast.config import REPO_ROOT
from digital_contrast.errors import DigitalContrastError

# The repository is the technical file: records sit beside the code, not inside the package.
QMS_DIR = REPO_ROOT / "qms"


class QmsRecordError(DigitalContrastError):
    """A quality record is missing, malformed or inconsistent with another record."""

    code = "QMS_RECORD_INVALID"

"""Digital Contrast: synthetic contrast-enhanced CT from a non-contrast CT.

The reference model is trained on a procedural phantom and is not clinically validated.
"""

from importlib.metadata import PackageNotFoundError, version

PRODUCT_NAME = "Digital Contrast"
MANUFACTURER = "Digital Contrast"

try:
    __version__ = version("digital-contrast")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

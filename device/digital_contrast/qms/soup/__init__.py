"""SOUP (IEC 62304 5.3.3, 5.3.4, 7.1.2, 8.1.2): list, assessments, platform, anomaly review
records, SBOM, vulnerability audit.

The scope is the runtime closure of `[project] dependencies`, computed from the installed
distributions' metadata (never typed), and the runtime platform, measured on the machine.
Direct dependencies, the front-end libraries vendored under `api/static/vendor/` and the
platform components carry a full assessment in `qms/soup.yaml` and an anomaly review record
each in `qms/soup/reviews/`; transitive ones get generated rows (version, licence, hashes,
which direct dependencies pull them in). `check_soup` reports every disagreement at its file
and line.

The names below are the item's interface to the command line, `qms check` and release records.
"""

from digital_contrast.qms.soup.assessments import SoupFile, load_soup
from digital_contrast.qms.soup.audit import audit_vulnerabilities
from digital_contrast.qms.soup.check import check_soup
from digital_contrast.qms.soup.closure import Dist, runtime_closure
from digital_contrast.qms.soup.platform import Measured, measure_platform
from digital_contrast.qms.soup.report import soup_rows, write_soup_list
from digital_contrast.qms.soup.reviews import load_reviews
from digital_contrast.qms.soup.sbom import write_sbom

__all__ = ["Dist", "Measured", "SoupFile", "audit_vulnerabilities", "check_soup", "load_reviews",
           "load_soup", "measure_platform", "runtime_closure", "soup_rows", "write_sbom",
           "write_soup_list"]

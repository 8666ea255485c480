"""SOUP (IEC 62304 5.3.3, 5.3.4, 7.1.2, 8.1.2): list, assessments, SBOM, vulnerability audit.

The scope is the runtime closure of `[project] dependencies`, computed from the installed
distributions' metadata (never typed). Direct dependencies, and the front-end libraries vendored
under `api/static/vendor/`, carry a full assessment in `qms/soup.yaml`; transitive ones get
generated rows (version, licence, which direct dependencies pull them in). `check_soup` reports
every disagreement between the two at its file and line.

The names below are the item's interface to the command line, `qms check` and release records.
"""

from digital_contrast.qms.soup.assessments import SoupFile, load_soup
from digital_contrast.qms.soup.audit import audit_vulnerabilities
from digital_contrast.qms.soup.check import check_soup
from digital_contrast.qms.soup.closure import Dist, runtime_closure
from digital_contrast.qms.soup.report import soup_rows, write_soup_list
from digital_contrast.qms.soup.sbom import write_sbom

__all__ = ["Dist", "SoupFile", "audit_vulnerabilities", "check_soup", "load_soup",
           "runtime_closure", "soup_rows", "write_sbom", "write_soup_list"]

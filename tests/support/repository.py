"""Rows of the repository's series index for tests: one call per series, overrides by name."""

import datetime as dt
from typing import Any


def index_row(n: int, **values: Any) -> dict[str, Any]:
    """Series n of study n // 2 and patient n // 4: a native abdominal CT unless told."""
    row = {"site": "site-a", "series_uid": f"2.25.{n}", "study_uid": f"2.25.9{n // 2}",
           "patient": f"P{n // 4}", "modality": "CT", "region": "abdomen",
           "region_source": "header", "phase": "native", "phase_source": "header",
           "kvp": 120.0, "thickness_mm": 1.0, "kernel": "B30F", "manufacturer": "ACME",
           "study_date": dt.date(2015, 1, 1), "age_band": "60-69", "sex": "F",
           "instances": 300, "quality": "complete", "instance_set_sha256": f"{n:064x}",
           "source": "ingest", "generated": "", "extra": {}}
    return {**row, **values}

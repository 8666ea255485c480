"""The repository in tests: rows of its series index (one call per series, overrides by name),
an index at an earlier revision and a phantom study sent as several patients."""

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydicom import dcmread
from sqlalchemy import Engine

from digital_contrast.repository.index.database import MIGRATIONS
from digital_contrast.store.database import make_engine


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


def phantom_patients(phantom_series: dict, root: Path, count: int) -> Path:
    """The phantom study sent as `count` patients (same age band, sex, scanner: one k-anonymity
    class without the study year), each with its own ids and UIDs, their studies 20 years
    apart: each patient's dates move back 1-10 years, so their shifted years never meet."""
    for patient in range(count):
        for phase in ("ncct", "arterial"):
            folder = root / f"p{patient}" / phase
            folder.mkdir(parents=True)
            for path in sorted(phantom_series[phase].glob("*.dcm")):
                ds = dcmread(path)
                ds.PatientID = f"{ds.PatientID}-{patient}"
                for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                    setattr(ds, keyword, f"{getattr(ds, keyword)}.{patient + 1}")
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.StudyDate = f"{int(ds.StudyDate[:4]) + 20 * patient}{ds.StudyDate[4:]}"
                ds.save_as(folder / path.name)
    return root


def index_at(url: str, revision: str) -> Engine:
    """An empty database at `url` migrated to the index's `revision` (a site's older index)."""
    engine = make_engine(url)
    with engine.connect() as connection, connection.begin():
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine

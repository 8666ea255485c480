"""Files a job produces beside its DICOM instances: the PNG previews and NIfTI volumes of its
maps, under `<data_dir>/jobs/<job id>/maps/<slug>/<name>`.

A job's maps folder is published in one step: the caller fills a temporary folder beside it,
and `publish_maps` swaps it in (an older folder of the same job, left by a run that crashed
before the job was marked done, is replaced). Reads accept only names of the expected shape, so
a request can never reach outside the folder. Retention removes the folder of a job it
de-identifies (`remove`).
"""

import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.file_journal import Intent

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SLUG = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")  # <kind>-<method>, e.g. uncertainty-tta
FILE_NAME = re.compile(r"^(preview_(axial|coronal|sagittal)\.png|[a-z]+(-[a-z0-9]+)+\.nii\.gz)$")
MAPS = "maps"


def media_type(name: str) -> str:
    return "image/png" if name.endswith(".png") else "application/gzip"


class JobArtifacts:
    """Job files under `root` (normally `<data_dir>/jobs`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> "JobArtifacts":
        return cls(Path(data_dir) / "jobs")

    def job_folder(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise StoreError(StoreErrorCode.JOB_NOT_FOUND, "not a job id")
        return self.root / job_id

    def maps_folder(self, job_id: str) -> Path:
        return self.job_folder(job_id) / MAPS

    def publish_maps(self, job_id: str, fill: Callable[[Path], None], intent: Intent
                     ) -> Path:
        """`fill(tmp)` writes `<slug>/<name>` files into a temporary folder that then becomes
        the job's maps folder, replacing any earlier one; both are named in the attempt's
        intent first. On failure nothing changes."""
        parent = self.job_folder(job_id)
        target = parent / MAPS
        tmp = parent / f".{MAPS}.{uuid.uuid4().hex[:12]}"
        intent.add(tmp, target)
        # 0700 whatever the umask (the files in them follow the service's umask, 0077).
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        parent.mkdir(mode=0o700, exist_ok=True)
        tmp.mkdir(mode=0o700)
        try:
            fill(tmp)
            if target.exists():  # an earlier, unfinished run of this job
                old = parent / f".{MAPS}.old-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def map_file(self, job_id: str, slug: str, name: str) -> Path | None:
        """The file, if the names are well formed and it exists; None otherwise."""
        if not SLUG.match(slug) or not FILE_NAME.match(name):
            return None
        path = self.maps_folder(job_id) / slug / name
        return path if path.is_file() and not path.is_symlink() else None

    def job_ids(self) -> list[str]:
        """Jobs that have a folder here."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _JOB_ID.match(p.name))

    def remove(self, job_id: str) -> bool:
        """Remove everything of one job; False when there was nothing."""
        folder = self.job_folder(job_id)
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True

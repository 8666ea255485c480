"""Writing a synthetic series: all instances or none, and never a second copy."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digital_contrast.imaging.ct_image import write_series_atomically
from digital_contrast.imaging.synthetic.content import SynthesizingModel
from digital_contrast.imaging.synthetic.sop import build_synthetic_series
from digital_contrast.imaging.uids import derived_series_uid
from digital_contrast.imaging.volume import SourceSeries, Volume


@dataclass(frozen=True)
class SyntheticSeries:
    series_instance_uid: str
    folder: Path
    created: bool  # False when an identical series (same UID) was already there


def write_synthetic_series(volume: Volume, source: SourceSeries, model: SynthesizingModel,
                           out_dir: Path, *, options: Mapping[str, object] | None = None,
                           flags: Sequence[str] = (),
                           created: datetime | None = None) -> SyntheticSeries:
    """Write the series under `out_dir/<SeriesInstanceUID>/`, one file per slice."""
    series_uid = str(derived_series_uid(source.series_instance_uid, model.bundle_sha256,
                                        options or {}))
    target = Path(out_dir) / series_uid

    def write(folder: Path) -> None:
        for ds in build_synthetic_series(volume, source, model, options=options, flags=flags,
                                         created=created):
            ds.save_as(folder / f"{int(ds.InstanceNumber):05d}.dcm", enforce_file_format=True)

    made = write_series_atomically(target, write)
    return SyntheticSeries(series_instance_uid=series_uid, folder=target, created=made)

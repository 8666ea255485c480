"""Writing every output of one map at once: all files or none, and never a second copy.

`<folder>/<slug>/` holds the Parametric Map, the Secondary Captures, the PNG previews and the
NIfTI. Everything is built first, written into a temporary folder beside the target and moved
into place in one rename, as the synthetic series is (imaging.ct_image.write_series_atomically).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom

from digital_contrast.explain.outputs.parametric_map import (
    build_parametric_map,
    check_map_volume,
    map_instance_uid,
    map_series_uid,
)
from digital_contrast.explain.outputs.previews import (
    VIEWS,
    preview_center,
    render_previews,
    write_png,
)
from digital_contrast.explain.outputs.secondary_capture import (
    build_secondary_captures,
    rendering_series_uid,
)
from digital_contrast.explain.outputs.spec import MapOutputError, MapSpec
from digital_contrast.imaging.ct_image import write_series_atomically
from digital_contrast.imaging.nifti import write_nifti
from digital_contrast.imaging.synthetic.content import SynthesizingModel
from digital_contrast.imaging.volume import Volume

PARAMETRIC_MAP = "parametric_map.dcm"
SECONDARY_CAPTURE_DIR = "secondary_capture"


@dataclass(frozen=True)
class MapOutputs:
    """Where one map's outputs are, and the UIDs a PACS knows them by."""

    root: Path  # the folder given to write_map_outputs; to_dict() paths are relative to it
    folder: Path  # root / slug
    spec: MapSpec
    parametric_map: Path
    secondary_captures: Mapping[str, Path]  # view -> file
    previews: Mapping[str, Path]  # view -> PNG
    nifti: Path
    pm_series_instance_uid: str
    pm_sop_instance_uid: str
    sc_series_instance_uid: str
    created: bool = field(default=True)  # False when an identical output was already there

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary for a job record (paths relative to `root`)."""
        def rel(path: Path) -> str:
            return path.relative_to(self.root).as_posix()

        return {
            "kind": self.spec.kind, "method": self.spec.method, "slug": self.spec.slug,
            "unit": self.spec.unit_code, "description": self.spec.description,
            "folder": rel(self.folder), "parametric_map": rel(self.parametric_map),
            "secondary_captures": {v: rel(p) for v, p in self.secondary_captures.items()},
            "previews": {v: rel(p) for v, p in self.previews.items()},
            "nifti": rel(self.nifti),
            "pm_series_instance_uid": self.pm_series_instance_uid,
            "pm_sop_instance_uid": self.pm_sop_instance_uid,
            "sc_series_instance_uid": self.sc_series_instance_uid,
        }


def write_map_outputs(folder: Path, *, ncct: Volume, synthetic: Volume, values: Volume,
                      spec: MapSpec, model: SynthesizingModel,
                      options: Mapping[str, object] | None = None,
                      created: datetime | None = None) -> MapOutputs:
    """Write `folder/<slug>/` for the map `values` of `synthetic` (computed from `ncct`)."""
    source = check_map_volume(values)
    for name, volume in (("NCCT", ncct), ("synthetic", synthetic)):
        if volume.shape != values.shape or not np.allclose(volume.affine, values.affine,
                                                           atol=1e-3):
            raise MapOutputError(f"the {name} volume {volume.shape} is not on the map's grid "
                                 f"{values.shape}")
    root = Path(folder)
    outputs = _layout(root, spec, source_uids=(
        map_series_uid(source, model, spec, options),
        rendering_series_uid(source, model, spec, options)))
    created = created or datetime.now().astimezone()

    def write(tmp: Path) -> None:
        center = preview_center(synthetic.array - ncct.array, ncct.spacing)
        renderings = render_previews(ncct, synthetic, values.array, spec, center)
        build_parametric_map(values, spec, model, options=options, created=created).save_as(
            tmp / PARAMETRIC_MAP, enforce_file_format=True)
        (tmp / SECONDARY_CAPTURE_DIR).mkdir()
        for sc in build_secondary_captures(renderings, source, spec, model, options=options,
                                           created=created):
            view = VIEWS[int(sc.InstanceNumber) - 1]
            sc.save_as(tmp / SECONDARY_CAPTURE_DIR / f"{view}.dcm", enforce_file_format=True)
        for view, image in renderings.items():
            write_png(image, tmp / f"preview_{view}.png")
        write_nifti(values, tmp / f"{spec.slug}.nii.gz")

    made = write_series_atomically(outputs.folder, write)
    if not made:
        _check_same_map(outputs)
    return replace(outputs, created=made)


def _layout(root: Path, spec: MapSpec, source_uids: tuple[str, str]) -> MapOutputs:
    folder = root / spec.slug
    pm_series, sc_series = source_uids
    return MapOutputs(
        root=root, folder=folder, spec=spec, parametric_map=folder / PARAMETRIC_MAP,
        secondary_captures={v: folder / SECONDARY_CAPTURE_DIR / f"{v}.dcm" for v in VIEWS},
        previews={v: folder / f"preview_{v}.png" for v in VIEWS},
        nifti=folder / f"{spec.slug}.nii.gz", pm_series_instance_uid=pm_series,
        pm_sop_instance_uid=map_instance_uid(pm_series),
        sc_series_instance_uid=sc_series)


def _check_same_map(outputs: MapOutputs) -> None:
    """An existing folder is kept only if it is this very map (same UIDs); never overwritten."""
    try:
        existing = pydicom.dcmread(outputs.parametric_map, stop_before_pixels=True)
        uid = str(existing.SeriesInstanceUID)
    except (OSError, AttributeError, pydicom.errors.InvalidDicomError):
        uid = ""
    if uid != outputs.pm_series_instance_uid:
        raise MapOutputError(f"{outputs.folder} already holds other outputs; a map is never "
                             "written over another")

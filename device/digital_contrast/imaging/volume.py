"""`Volume`: a CT volume in Hounsfield units with its patient-space geometry and provenance."""

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

# Air: what padding and out-of-field voxels become.
AIR_HU = -1024.0


@dataclass(frozen=True)
class SourceSlice:
    """One source instance, in volume order, as a derived series must reference it."""

    sop_instance_uid: str
    sop_class_uid: str
    position: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """What a derived series needs from its source: the shared header and one entry per slice."""

    header: Dataset  # first slice's attributes without pixel data or per-slice attributes
    slices: tuple[SourceSlice, ...]
    transfer_syntax_uid: str
    lossy: bool  # the pixels went through lossy compression at some point

    @property
    def series_instance_uid(self) -> str:
        return str(self.header.SeriesInstanceUID)

    @property
    def study_instance_uid(self) -> str:
        return str(self.header.StudyInstanceUID)


@dataclass(frozen=True, eq=False)
class Volume:
    """float32 HU array in (slice, row, column) order; `affine` maps [k, j, i, 1] to LPS mm."""

    array: np.ndarray
    affine: np.ndarray
    source: SourceSeries | None = None
    padding: np.ndarray | None = field(default=None, repr=False)  # True where pixel padding was

    def __post_init__(self) -> None:
        if self.array.ndim != 3 or self.array.dtype != np.float32:
            raise ValueError(
                f"array must be 3-D float32, not {self.array.ndim}-D {self.array.dtype}")
        if self.affine.shape != (4, 4) or not np.all(np.isfinite(self.affine)):
            raise ValueError("affine must be a finite 4x4 matrix")
        if abs(np.linalg.det(self.affine[:3, :3])) < 1e-9:
            raise ValueError("affine is singular")
        if self.padding is not None and self.padding.shape != self.array.shape:
            raise ValueError("padding mask shape differs from the array")
        if self.source is not None and len(self.source.slices) != self.array.shape[0]:
            raise ValueError("source slice count differs from the array")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along (slice, row, column)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """Unit LPS direction of increasing (slice, row, column) index, as columns."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    def world(self, index: tuple[float, float, float]) -> np.ndarray:
        """LPS position (mm) of a voxel index (k, j, i)."""
        return (self.affine @ np.array([*index, 1.0]))[:3]

    def with_array(self, array: np.ndarray) -> "Volume":
        """Same geometry and provenance, new values (e.g. a synthetic image)."""
        return Volume(array=array.astype(np.float32, copy=False), affine=self.affine,
                      source=self.source)

"""Where explanation looks: the synthesized aortic lumen and a box around it, on the working grid.

The aorta is the enhanced structure that runs along the most slices; kidneys, renal veins and
bowel wall enhance too but are short along the body axis.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digital_contrast.inference.aorta import aortic_component, lumen_bright
from digital_contrast.inference.synthesize import WorkingPrediction

__all__ = ["Box", "aortic_component", "bounding_box", "centred_box", "predicted_lumen"]



def predicted_lumen(prediction: WorkingPrediction) -> np.ndarray:
    """Voxels the synthesis made lumen-bright on the working grid."""
    return lumen_bright(prediction.image.as_tensor()[0].numpy(),
                        prediction.enhancement.as_tensor()[0].numpy())


@dataclass(frozen=True)
class Box:
    """A box of working-grid voxels, [start, stop) along (slice, row, column)."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]

    def grown(self, margin: int, shape: tuple[int, ...]) -> "Box":
        """`margin` voxels wider on every side, clipped to an array of `shape`."""
        return Box(tuple(max(0, a - margin) for a in self.start),  # type: ignore[arg-type]
                   tuple(min(n, b + margin) for b, n in zip(self.stop, shape, strict=True)))


def bounding_box(mask: np.ndarray) -> Box | None:
    found = ndimage.find_objects(mask.astype(np.int8))
    if not found or found[0] is None:
        return None
    return Box(tuple(s.start for s in found[0]), tuple(s.stop for s in found[0]))  # type: ignore[arg-type]


def centred_box(centre: tuple[int, int, int], size: tuple[int, int, int],
                shape: tuple[int, ...]) -> Box:
    """A box of `size` around `centre`, moved (not shrunk) to stay inside `shape` where it
    fits; where `shape` is smaller than `size`, the whole axis."""
    start, stop = [], []
    for c, s, n in zip(centre, size, shape, strict=True):
        a = min(max(0, c - s // 2), max(0, n - s))
        start.append(a)
        stop.append(min(n, a + s))
    return Box(tuple(start), tuple(stop))  # type: ignore[arg-type]

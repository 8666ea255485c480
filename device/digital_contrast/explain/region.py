"""Where explanation looks: the synthesized aortic lumen and a box around it, on the working grid.

The aorta is the enhanced structure that runs along the most slices; kidneys, renal veins and
bowel wall enhance too but are short along the body axis.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digital_contrast.inference.synthesize import WorkingPrediction

LUMEN_HU = 150.0  # a synthetic voxel at or above this reads as opacified lumen


def predicted_lumen(prediction: WorkingPrediction) -> np.ndarray:
    """Voxels the synthesis made lumen-bright: >= LUMEN_HU after, below it before."""
    image = prediction.image.as_tensor()[0].numpy()
    enhancement = np.maximum(prediction.enhancement.as_tensor()[0].numpy(), 0.0)
    return (image + enhancement >= LUMEN_HU) & (image < LUMEN_HU)


def aortic_component(lumen: np.ndarray) -> np.ndarray:
    """The connected part of `lumen` that spans the most slices, the larger one on a tie (all
    False when empty)."""
    components, count = ndimage.label(lumen)
    if count == 0:
        return np.zeros(lumen.shape, dtype=bool)
    boxes = ndimage.find_objects(components)
    sizes = np.bincount(components.ravel())[1:]
    best = max(range(count), key=lambda n: (boxes[n][0].stop - boxes[n][0].start, sizes[n]))
    return components == best + 1


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

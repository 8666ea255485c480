"""Where the aorta is: the lumen a prediction makes bright, and its part that runs along the
most slices (kidneys, renal veins and bowel wall enhance too but are short along the body)."""

import numpy as np
from scipy import ndimage

LUMEN_HU = 150.0  # a synthetic voxel at or above this reads as opacified lumen


def lumen_bright(image: np.ndarray, enhancement: np.ndarray) -> np.ndarray:
    """Voxels the enhancement makes lumen-bright: >= LUMEN_HU after, below it before."""
    return (image + np.maximum(enhancement, 0.0) >= LUMEN_HU) & (image < LUMEN_HU)


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

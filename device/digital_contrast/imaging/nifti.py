"""NIfTI for research exchange. NIfTI is RAS+ with (i, j, k) indexing; `Volume` is LPS with
(k, j, i): both the axes and the signs of x and y change on the way."""

from pathlib import Path

import nibabel as nib
import numpy as np

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_REVERSE_AXES = [2, 1, 0, 3]  # (k, j, i) <-> (i, j, k) columns of an affine


def to_nifti(volume: Volume, dtype: type[np.generic] = np.float32) -> nib.Nifti1Image:
    affine = LPS_TO_RAS @ volume.affine[:, _REVERSE_AXES]
    data = np.ascontiguousarray(volume.array.transpose(2, 1, 0)).astype(dtype, copy=False)
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)  # scanner-anatomical
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    return image


def write_nifti(volume: Volume, path: Path, dtype: type[np.generic] = np.float32) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(to_nifti(volume, dtype), path)
    return path


def read_nifti(path: Path) -> Volume:
    """Read a 3-D NIfTI into an LPS `Volume` (values as stored, scaled to float32)."""
    try:
        image = nib.load(Path(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise ImagingError(ImagingErrorCode.NIFTI_INVALID,
                           f"{Path(path).name} is not a readable NIfTI file ({exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ImagingError(ImagingErrorCode.NIFTI_INVALID,
                           f"{Path(path).name} has {data.ndim} dimensions; a 3-D volume is needed")
    affine = (LPS_TO_RAS @ image.affine)[:, _REVERSE_AXES]
    return Volume(array=np.ascontiguousarray(data.transpose(2, 1, 0)), affine=affine)

"""Attributes every CT Image instance we write shares: image plane, pixel data, file meta."""

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from digital_contrast import __version__
from digital_contrast.imaging.geometry import orientation_of
from digital_contrast.imaging.uids import IMPLEMENTATION_CLASS_UID

HU_MIN, HU_MAX = -1024, 3071
_INT16 = np.iinfo(np.int16)


def add_image_plane(ds: Dataset, affine: np.ndarray, k: int, slice_thickness: float) -> None:
    """Image Plane module of slice k: position, orientation, spacing, thickness, location."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    position = (affine @ np.array([k, 0.0, 0.0, 1.0]))[:3]
    ds.ImagePositionPatient = [_ds_decimal(v) for v in position]
    ds.ImageOrientationPatient = [_ds_decimal(v) for v in orientation_of(affine)]
    ds.PixelSpacing = [_ds_decimal(spacing[1]), _ds_decimal(spacing[2])]
    ds.SliceThickness = _ds_decimal(slice_thickness)
    normal = affine[:3, 0] / spacing[0]
    ds.SliceLocation = _ds_decimal(float(position @ normal))


def add_pixels(ds: Dataset, hu: np.ndarray, *, rescale_intercept: int = 0) -> None:
    """Image Pixel module. Intercept 0: signed 16-bit values equal to HU. Intercept -1024: the
    unsigned 12-bit encoding most scanners use, so readers are exercised on a real rescale."""
    if rescale_intercept == 0:
        stored = np.clip(np.rint(hu), _INT16.min, _INT16.max).astype("<i2")
        ds.BitsStored, ds.PixelRepresentation = 16, 1
    elif rescale_intercept == HU_MIN:
        stored = np.clip(np.rint(hu) - HU_MIN, 0, HU_MAX - HU_MIN).astype("<u2")
        ds.BitsStored, ds.PixelRepresentation = 12, 0
    else:
        raise ValueError(f"unsupported rescale intercept {rescale_intercept}")
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.HighBit = ds.BitsStored - 1
    ds.RescaleIntercept = str(rescale_intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()


def file_meta(sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = f"DCONTRAST_{__version__}"[:16]
    return meta


def dicom_date_time(moment: datetime) -> tuple[str, str]:
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


def _ds_decimal(value: float) -> str:
    # DS is at most 16 characters; 6 decimals keep micrometre precision for positions.
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text[:16]


def write_series_atomically(target: Path, write: Callable[[Path], None]) -> bool:
    """Run `write(tmp_dir)` and move the folder to `target` in one rename.

    Returns False, writing nothing, when `target` already exists (the same UID means the same
    content). On any failure the temporary folder is removed and nothing appears at `target`.
    """
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.is_dir():  # a concurrent writer of the same series got there first
            return False
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True

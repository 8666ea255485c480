"""Small, fully controlled CT series for reader and writer tests (independent of the phantom)."""

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from digital_contrast.imaging.ct_image import add_image_plane, add_pixels, file_meta
from digital_contrast.imaging.geometry import affine_from_dicom, slice_normal
from digital_contrast.imaging.uids import uid_from


def ct_slices(n: int = 6, *, rows: int = 24, columns: int = 20,
              pixel_spacing: tuple[float, float] = (0.8, 0.75), slice_spacing: float = 2.5,
              origin: Sequence[float] = (-10.0, -12.0, 100.0),
              orientation: Sequence[float] = (1, 0, 0, 0, 1, 0), name: str = "a",
              patient_name: str = "Doe^Jane", rescale_intercept: int = -1024,
              seed: int = 0) -> tuple[list[Dataset], np.ndarray]:
    """CT Image datasets in position order, and the HU array they encode (slice, row, col)."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 2000, size=(n, rows, columns)).astype(np.float32)
    normal = slice_normal(orientation)
    affine = affine_from_dicom(orientation, pixel_spacing, np.asarray(origin, float), normal,
                               slice_spacing)
    series_uid = uid_from("test-series", name)
    datasets = []
    for k in range(n):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = patient_name
        ds.PatientID = "TEST-1"
        ds.PatientBirthDate = "19500101"
        ds.PatientSex = "F"
        ds.StudyInstanceUID = uid_from("test-study", name)
        ds.StudyDate, ds.StudyTime = "20260101", "101010"
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.AccessionNumber = "ACC1"
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 3
        ds.FrameOfReferenceUID = uid_from("test-for", name)
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "ACME Scanners"
        ds.ManufacturerModelName = "Model 7"
        ds.DeviceSerialNumber = "SN-42"
        ds.SoftwareVersions = "VX1"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = uid_from(series_uid, str(k))
        ds.InstanceNumber = n - k
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = "120"
        ds.AcquisitionNumber = 1
        ds.PatientPosition = "HFS"
        ds.ContentDate, ds.ContentTime = "20260101", "101010"
        add_image_plane(ds, affine, k, slice_spacing)
        add_pixels(ds, hu[k], rescale_intercept=rescale_intercept)
        ds.file_meta = file_meta(ds.SOPInstanceUID)
        datasets.append(ds)
    return datasets, hu


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def changed(ds: Dataset, **changes: Any) -> bytes:
    """The bytes of a copy of `ds` with elements set (None: removed)."""
    copy = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    for keyword, value in changes.items():
        if value is None:
            del copy[keyword]
        else:
            setattr(copy, keyword, value)
    return to_bytes(copy)

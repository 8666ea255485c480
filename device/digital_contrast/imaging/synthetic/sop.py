"""CT Image instances of a synthetic series, labelled as docs/architecture.md says ("Labelling").

Built from scratch rather than copied from the source, so that nothing of the acquisition that
no longer holds (contrast attributes, private tags, dose values) leaks into the derived image.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from digital_contrast import MANUFACTURER, PRODUCT_NAME, __version__
from digital_contrast.imaging.ct_image import (
    add_image_plane,
    add_pixels,
    dicom_date_time,
    file_meta,
)
from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.geometry import affine_from_dicom, slice_normal
from digital_contrast.imaging.synthetic.content import (
    SynthesizingModel,
    contributing_equipment,
    source_image_item,
)
from digital_contrast.imaging.uids import derived_instance_uid, derived_series_uid
from digital_contrast.imaging.volume import SourceSeries, Volume

DESCRIPTION_PREFIX = "SYNTH CONTRAST (AI)"
IMAGE_TYPE = ["DERIVED", "SECONDARY", "AXIAL", "SYNTH_CONTRAST"]
WARNING = ("SYNTHETIC IMAGE - NO CONTRAST AGENT WAS GIVEN. Computed by AI from a non-contrast "
           "CT; not an acquired contrast-enhanced image.")
SERIES_NUMBER_BASE = 9000
_LO_MAX = 64

# Copied unchanged from the source: patient, study, frame of reference, and the acquisition
# facts that still describe the pixels' origin.
_COPIED = (
    "SpecificCharacterSet", "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
    "PatientSex", "OtherPatientIDsSequence", "PatientAge", "PatientSize", "PatientWeight",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
    "AccessionNumber", "IssuerOfAccessionNumberSequence", "StudyDescription",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "PatientPosition", "BodyPartExamined",
    "Laterality", "KVP", "InstitutionName",
)


def image_comments(model: SynthesizingModel) -> str:
    """ImageComments (LT): the synthetic-image warning, then the use case's notice."""
    return f"{WARNING} {model.notice}" if model.notice else WARNING


def series_description(model: SynthesizingModel, flags: Sequence[str] = ()) -> str:
    """`SYNTH CONTRAST (AI)` + flags (never cut) + model label (cut to fit 64 characters)."""
    head = " ".join([DESCRIPTION_PREFIX, *flags])
    if len(head) > _LO_MAX:
        raise ValueError(f"series description flags leave no room: {head!r}")
    room = _LO_MAX - len(head) - 1
    return f"{head} {model.label[:room]}".rstrip() if room > 0 else head


def build_synthetic_series(volume: Volume, source: SourceSeries, model: SynthesizingModel, *,
                           options: Mapping[str, object] | None = None,
                           flags: Sequence[str] = (),
                           created: datetime | None = None) -> list[Dataset]:
    """One CT Image dataset per slice of `volume`, which must have the source's geometry."""
    _check_geometry(volume, source)
    created = created or datetime.now().astimezone()
    series_uid = derived_series_uid(source.series_instance_uid, model.bundle_sha256,
                                    options or {})
    shared = _series_attributes(source, model, flags, created)
    thickness = float(source.header.get("SliceThickness") or volume.spacing[0])
    datasets = []
    for k, ref in enumerate(source.slices):
        ds = Dataset()
        ds.update(shared)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = derived_instance_uid(series_uid, k)
        ds.InstanceNumber = k + 1
        ds.SourceImageSequence = [source_image_item(ref.sop_class_uid, ref.sop_instance_uid)]
        add_image_plane(ds, volume.affine, k, thickness)
        add_pixels(ds, volume.array[k])
        ds.file_meta = file_meta(ds.SOPInstanceUID)
        datasets.append(ds)
    return datasets


def _check_geometry(volume: Volume, source: SourceSeries) -> None:
    header = source.header
    positions = np.array([s.position for s in source.slices])
    if (len(positions), int(header.Rows), int(header.Columns)) != volume.shape:
        raise ImagingError(ImagingErrorCode.DERIVED_GEOMETRY_MISMATCH,
                           f"volume shape {volume.shape} differs from the source's "
                           f"{(len(positions), int(header.Rows), int(header.Columns))}")
    normal = slice_normal(header.ImageOrientationPatient)
    step = float(np.mean(np.diff(positions, axis=0) @ normal))
    expected = affine_from_dicom(header.ImageOrientationPatient, header.PixelSpacing,
                                 positions[0], normal, step)
    if not np.allclose(volume.affine, expected, atol=1e-3):
        raise ImagingError(ImagingErrorCode.DERIVED_GEOMETRY_MISMATCH,
                           "volume position, orientation or spacing differs from the source")


def _series_attributes(source: SourceSeries, model: SynthesizingModel, flags: Sequence[str],
                       created: datetime) -> Dataset:
    ds = Dataset()
    for keyword in _COPIED:
        if keyword in source.header:
            setattr(ds, keyword, source.header[keyword].value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                    "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
                    "PatientPosition", "KVP"):  # type 2: present even when unknown
        if keyword not in ds:
            setattr(ds, keyword, None)
    if "BodyPartExamined" not in ds and "Laterality" not in ds:
        ds.Laterality = None  # type 2C: a paired body part cannot be ruled out
    date, time = dicom_date_time(created)
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.ImageType = IMAGE_TYPE
    ds.SyntheticData = "YES"
    ds.SeriesNumber = SERIES_NUMBER_BASE + int(source.header.get("SeriesNumber") or 0) % 1000
    ds.SeriesDescription = series_description(model, flags)
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = PRODUCT_NAME
    ds.SoftwareVersions = [__version__, model.label]
    ds.ContributingEquipmentSequence = contributing_equipment(source, model, created)
    ds.DerivationDescription = (
        f"Synthetic contrast enhancement computed by AI model {model.label} from a non-contrast "
        "CT. No contrast agent was administered.")
    ds.ImageComments = image_comments(model)
    ds.BurnedInAnnotation = "NO"
    ds.AcquisitionNumber = None
    if source.lossy:
        ds.LossyImageCompression = "01"
        for keyword in ("LossyImageCompressionRatio", "LossyImageCompressionMethod"):
            if keyword in source.header:
                setattr(ds, keyword, source.header[keyword].value)
    else:
        ds.LossyImageCompression = "00"
    return ds

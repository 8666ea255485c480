"""The preview renderings as DICOM Secondary Capture images, one per view, in the source's study.

A rendering is a picture for people, so it goes to the PACS as Secondary Capture beside the
Parametric Map: the same study and patient, its own series, labelled as this product's output.
"""

import warnings
from collections.abc import Mapping
from datetime import datetime

import numpy as np
from highdicom import ContributingEquipment
from highdicom.sc import SCImage
from pydicom.dataset import Dataset

from digital_contrast import MANUFACTURER, PRODUCT_NAME, __version__
from digital_contrast.explain.outputs.parametric_map import (
    copy_series_anatomy,
    map_comments,
    map_series_description,
    map_series_number,
    options_key,
    our_equipment,
    source_datasets,
)
from digital_contrast.explain.outputs.previews import VIEWS, patient_orientation
from digital_contrast.explain.outputs.spec import EVIDENCE, MapOutputError, MapSpec
from digital_contrast.imaging.ct_image import dicom_date_time
from digital_contrast.imaging.synthetic.content import SynthesizingModel, source_image_item
from digital_contrast.imaging.uids import uid_from
from digital_contrast.imaging.volume import SourceSeries

# SC "Workstation": rendered by software, not digitised from film or video.
CONVERSION_TYPE = "WSD"


def rendering_series_uid(source: SourceSeries, model: SynthesizingModel, spec: MapSpec,
                         options: Mapping[str, object] | None = None) -> str:
    return str(uid_from("map-rendering-series", source.series_instance_uid, model.bundle_sha256,
                        spec.slug, options_key(options)))


def build_secondary_captures(renderings: Mapping[str, np.ndarray], source: SourceSeries,
                             spec: MapSpec, model: SynthesizingModel, *,
                             options: Mapping[str, object] | None = None,
                             created: datetime | None = None) -> list[Dataset]:
    """One RGB Secondary Capture per rendering, in VIEWS order (axial, coronal, sagittal)."""
    unknown = sorted(set(renderings) - set(VIEWS))
    if unknown or not renderings:
        raise MapOutputError(f"renderings must be named from {', '.join(VIEWS)}; got "
                             f"{sorted(renderings) or 'none'}")
    created = created or datetime.now().astimezone()
    date, time = dicom_date_time(created)
    series_uid = rendering_series_uid(source, model, spec, options)
    reference = source_datasets(source)[0]
    header = source.header
    images = []
    for number, view in enumerate((v for v in VIEWS if v in renderings), start=1):
        pixels = renderings[view]
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise MapOutputError(f"rendering {view!r} must be an (H, W, 3) uint8 image, not "
                                 f"{pixels.shape} {pixels.dtype}")
        with warnings.catch_warnings():
            # The source's name is copied as it is (changing it would change patient data);
            # highdicom's warning about a one-component name quotes it, which no log may do.
            warnings.filterwarnings("ignore", message=".*intended person name",
                                    category=UserWarning)
            sc = SCImage(
                pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
                coordinate_system="PATIENT", study_instance_uid=source.study_instance_uid,
                series_instance_uid=series_uid,
                series_number=map_series_number(source, spec, rendering=True),
                sop_instance_uid=uid_from("map-rendering-instance", series_uid, view),
                instance_number=number, manufacturer=MANUFACTURER,
                patient_id=reference.PatientID, patient_name=reference.PatientName,
                patient_birth_date=reference.PatientBirthDate, patient_sex=reference.PatientSex,
                accession_number=reference.AccessionNumber, study_id=reference.StudyID,
                study_date=reference.StudyDate, study_time=reference.StudyTime,
                referring_physician_name=reference.ReferringPhysicianName,
                patient_orientation=patient_orientation(header.ImageOrientationPatient, view),
                contributing_equipment=[*_scanner(reference), our_equipment(model, spec, created)],
                series_description=map_series_description(model, spec, "PREVIEW"),
                manufacturer_model_name=PRODUCT_NAME, software_versions=[__version__, model.label],
                content_date=date, content_time=time, series_date=date, series_time=time,
                specific_character_set=header.get("SpecificCharacterSet"))
        sc.copy_patient_and_study_information(reference)
        copy_series_anatomy(sc, source)
        _label(sc, source, spec, model, view, created)
        images.append(sc)
    return images


def _scanner(reference: Dataset) -> list[ContributingEquipment]:
    """The source's scanner as Acquisition Equipment (none when the source names no maker)."""
    try:
        return [ContributingEquipment.for_image_acquisition(reference)]
    except AttributeError:
        return []


def _label(sc: Dataset, source: SourceSeries, spec: MapSpec, model: SynthesizingModel,
           view: str, created: datetime) -> None:
    date, time = dicom_date_time(created)
    sc.InstanceCreationDate, sc.InstanceCreationTime = date, time
    sc.DateOfSecondaryCapture, sc.TimeOfSecondaryCapture = date, time
    sc.ConversionType = CONVERSION_TYPE
    sc.SyntheticData = "YES"  # two of the three panels show AI-synthesized content
    # NO: BurnedInAnnotation (0028,0301) says whether the pixels hold enough text to identify
    # the patient (PS3.3 C.7.6.1.1). The text drawn here is the synthetic-image warning, titles,
    # the map's description and colour scale - never a name, ID, date or other header value.
    sc.BurnedInAnnotation = "NO"
    sc.RecognizableVisualFeatures = "NO"  # abdominal planes: no face or other identifying view
    sc.DerivationDescription = (
        f"{view.capitalize()} rendering of the non-contrast CT, the synthetic contrast-enhanced "
        f"CT computed by AI model {model.label} and the {spec.title} map. No contrast agent "
        f"was administered. {EVIDENCE}.")[:1024]
    sc.ImageComments = map_comments(spec, model)
    sc.LossyImageCompression = "01" if source.lossy else "00"  # the pixels' history carries on
    sc.SourceImageSequence = [source_image_item(s.sop_class_uid, s.sop_instance_uid)
                              for s in source.slices]

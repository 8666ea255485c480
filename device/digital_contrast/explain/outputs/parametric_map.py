"""A map's values as one DICOM Parametric Map (float32, one frame per source slice).

A map is never written as a CT image: a viewer would show it in HU windows beside the patient's
images. The Parametric Map keeps the source's patient, study and frame of reference so that it
overlays the source, and is labelled as this product's AI output like the synthetic series.
"""

import json
from collections.abc import Mapping
from datetime import datetime

import numpy as np
from highdicom import ContributingEquipment, VOILUTTransformation
from highdicom.pm import ParametricMap, RealWorldValueMapping
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from digital_contrast import MANUFACTURER, PRODUCT_NAME, __version__
from digital_contrast.explain.outputs.spec import EVIDENCE, MapOutputError, MapSpec
from digital_contrast.imaging.ct_image import dicom_date_time
from digital_contrast.imaging.geometry import orientation_of
from digital_contrast.imaging.synthetic.content import SynthesizingModel
from digital_contrast.imaging.synthetic.sop import _COPIED, WARNING, series_description
from digital_contrast.imaging.uids import uid_from
from digital_contrast.imaging.volume import SourceSeries, Volume

MAP_WARNING = ("AI-DERIVED MAP OF A SYNTHETIC IMAGE - NO CONTRAST AGENT WAS GIVEN. Values "
               "describe the synthetic contrast enhancement; they are not an acquired image.")
# Series numbers beside the synthetic CT series (9000 + n): maps 92xx/94xx, renderings 93xx/95xx.
SERIES_NUMBER_BASE = {"uncertainty": 9200, "attribution": 9400}
_SERIES_NUMBER_SC_OFFSET = 100

# What highdicom reads from each source image (pm/sop.py, image.py, base.py, base_content.py):
# identity and references, the Patient and Study modules it copies, frame of reference, plane
# geometry, lossy-compression history, and the scanner it lists as Acquisition Equipment.
_SOURCE_PATIENT_STUDY = tuple(k for k in _COPIED  # as the synthetic CT series keeps them
                              if k not in ("KVP", "PatientPosition", "BodyPartExamined",
                                           "Laterality"))
_SOURCE_GEOMETRY = ("Rows", "Columns", "PixelSpacing", "ImageOrientationPatient",
                    "SliceThickness", "SpacingBetweenSlices")
_SOURCE_SCANNER = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions",
                   "DeviceSerialNumber", "InstitutionName", "InstitutionalDepartmentName",
                   "InstitutionAddress", "StationName", "AcquisitionDateTime")
_SOURCE_LOSSY = ("LossyImageCompressionRatio", "LossyImageCompressionMethod")
# Type 2 attributes highdicom reads as `src.X` (an AttributeError when absent).
_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
          "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def options_key(options: Mapping[str, object] | None) -> str:
    return json.dumps(dict(options or {}), sort_keys=True, separators=(",", ":"), default=str)


def map_series_uid(source: SourceSeries, model: SynthesizingModel, spec: MapSpec,
                   options: Mapping[str, object] | None = None) -> str:
    """Same source, bundle, map and options => same UID: a retry never adds a second series."""
    return str(uid_from("map-series", source.series_instance_uid, model.bundle_sha256,
                        spec.slug, options_key(options)))


def map_instance_uid(series_uid: str) -> str:
    return str(uid_from("map-instance", series_uid))


def map_series_number(source: SourceSeries, spec: MapSpec, *, rendering: bool = False) -> int:
    offset = _SERIES_NUMBER_SC_OFFSET if rendering else 0
    return (SERIES_NUMBER_BASE[spec.kind] + offset
            + int(source.header.get("SeriesNumber") or 0) % 100)


def map_series_description(model: SynthesizingModel, spec: MapSpec, *extra: str) -> str:
    """`SYNTH CONTRAST (AI) MAP UNCERTAINTY [extra] <model>`, at most 64 characters."""
    return series_description(model, flags=["MAP", spec.kind.upper(), *extra])


def map_comments(spec: MapSpec, model: SynthesizingModel) -> str:
    """ImageComments (LT): the synthetic-image warning, what the map is, the evidence and the
    use case's notice."""
    comments = (f"{WARNING} {MAP_WARNING} {spec.title} map: {spec.description.rstrip('.')}. "
                f"Values in {spec.unit_meaning}. {EVIDENCE}.")
    return f"{comments} {model.notice}" if model.notice else comments


def our_equipment(model: SynthesizingModel, spec: MapSpec,
                  created: datetime) -> ContributingEquipment:
    """This product as the Synthesizing Equipment (109100, DCM) of the map."""
    return ContributingEquipment(
        manufacturer=MANUFACTURER, manufacturer_model_name=PRODUCT_NAME,
        software_versions=[__version__, model.label],
        purpose_of_reference=codes.DCM.SynthesizingEquipment, contribution_datetime=created,
        contribution_description=(
            f"{spec.title} map of the synthetic contrast enhancement by model {model.label} "
            f"(bundle sha256 {model.bundle_sha256[:16]}); no contrast agent was "
            "administered")[:1024])


def source_datasets(source: SourceSeries) -> list[Dataset]:
    """Minimal stand-ins for the source slices, holding exactly what highdicom reads."""
    header = source.header
    shared = Dataset()
    for keyword in (*_SOURCE_PATIENT_STUDY, *_SOURCE_GEOMETRY, *_SOURCE_SCANNER,
                    "SeriesInstanceUID"):
        if keyword in header:
            setattr(shared, keyword, header[keyword].value)
    for keyword in _TYPE2:
        if keyword not in shared:
            setattr(shared, keyword, None)
    if source.lossy:
        shared.LossyImageCompression = "01"
        for keyword in _SOURCE_LOSSY:
            if keyword in header:
                setattr(shared, keyword, header[keyword].value)
    else:
        shared.LossyImageCompression = "00"
    datasets = []
    for k, ref in enumerate(source.slices):
        ds = Dataset()
        ds.update(shared)
        ds.SOPClassUID = ref.sop_class_uid
        ds.SOPInstanceUID = ref.sop_instance_uid
        ds.ImagePositionPatient = list(ref.position)
        ds.InstanceNumber = k + 1
        datasets.append(ds)
    return datasets


def check_map_volume(values: Volume) -> SourceSeries:
    """The map must be finite float32 on its source's grid (so its frames are the slices)."""
    source = values.source
    if source is None:
        raise MapOutputError("the map volume has no source series: a Parametric Map must "
                             "reference the slices it was computed on")
    header = source.header
    expected = (len(source.slices), int(header.Rows), int(header.Columns))
    if values.shape != expected:
        raise MapOutputError(f"map shape {values.shape} differs from the source series' "
                             f"{expected} (slices, rows, columns)")
    if not np.all(np.isfinite(values.array)):
        raise MapOutputError("the map has NaN or infinite values")
    n = expected[0]
    corners = values.affine @ np.stack([np.arange(n), np.zeros(n), np.zeros(n), np.ones(n)])
    positions = np.array([s.position for s in source.slices])
    same = (np.allclose(corners[:3].T, positions, atol=1e-3)
            and np.allclose(orientation_of(values.affine),
                            [float(v) for v in header.ImageOrientationPatient], atol=1e-4)
            and np.allclose(values.spacing[1:], [float(v) for v in header.PixelSpacing],
                            atol=1e-4))
    if not same:
        raise MapOutputError("map position, orientation or pixel spacing differs from the "
                             "source series")
    return source


def build_parametric_map(values: Volume, spec: MapSpec, model: SynthesizingModel, *,
                         options: Mapping[str, object] | None = None,
                         created: datetime | None = None) -> ParametricMap:
    """One Parametric Map instance of `values` (a map on its source's grid, in `spec`'s unit)."""
    source = check_map_volume(values)
    created = created or datetime.now().astimezone()
    date, time = dicom_date_time(created)
    series_uid = map_series_uid(source, model, spec, options)
    array = np.ascontiguousarray(values.array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    unit = CodedConcept(value=spec.unit_code, scheme_designator="UCUM",
                        meaning=spec.unit_meaning)
    mapping = RealWorldValueMapping(
        lut_label=spec.kind.upper(),
        lut_explanation=f"{spec.title} of the synthetic enhancement, {spec.unit_meaning}"[:64],
        unit=unit, value_range=(low, high), slope=1.0, intercept=0.0)
    window = VOILUTTransformation(window_center=(low + high) / 2,
                                  window_width=max(high - low, 1e-3),
                                  window_explanation="Full range of the map")
    pm = ParametricMap(
        source_images=source_datasets(source), pixel_array=array,
        series_instance_uid=series_uid,
        series_number=map_series_number(source, spec),
        sop_instance_uid=map_instance_uid(series_uid), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name=PRODUCT_NAME,
        software_versions=[__version__, model.label],  # type: ignore[arg-type]
        # Type 1 here; software has no hardware serial, its released version identifies it.
        device_serial_number=__version__,
        # An abdominal CT map: no face or other feature that identifies the patient.
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[window],
        content_label=spec.kind.upper()[:16],
        content_description=f"AI {spec.kind} map ({spec.method}) of a synthetic CT"[:64],
        # The evidence is a phantom (EVIDENCE): research content, not a validated product.
        content_qualification="RESEARCH",
        contributing_equipment=[our_equipment(model, spec, created)],
        series_description=map_series_description(model, spec),
        content_date=date, content_time=time, series_date=date, series_time=time)
    _label(pm, source, spec, model, created)
    return pm


def copy_series_anatomy(ds: Dataset, source: SourceSeries) -> None:
    """Body part and laterality of the source (General Series), as the synthetic series has."""
    for keyword in ("BodyPartExamined", "Laterality"):
        if keyword in source.header:
            setattr(ds, keyword, source.header[keyword].value)
    if "BodyPartExamined" not in ds and "Laterality" not in ds:
        ds.Laterality = None  # type 2C: a paired body part cannot be ruled out


def _label(pm: Dataset, source: SourceSeries, spec: MapSpec, model: SynthesizingModel,
           created: datetime) -> None:
    date, time = dicom_date_time(created)
    copy_series_anatomy(pm, source)
    pm.InstanceCreationDate, pm.InstanceCreationTime = date, time
    # Every value of the map comes from AI synthesis: never to be taken as acquired data.
    pm.SyntheticData = "YES"
    pm.DerivationDescription = (
        f"{spec.title} map of the synthetic contrast enhancement computed by AI model "
        f"{model.label} from a non-contrast CT. No contrast agent was administered. The values "
        f"are {spec.description.rstrip('.')} in {spec.unit_meaning}, not CT image "
        f"intensities. {EVIDENCE}.")[:1024]
    pm.ImageComments = map_comments(spec, model)
    # highdicom names a fresh random Dimension Organization UID; derive it like every UID here.
    organization = uid_from("map-dimension-organization", pm.SOPInstanceUID)
    for item in (*pm.DimensionOrganizationSequence, *pm.DimensionIndexSequence):
        item.DimensionOrganizationUID = organization

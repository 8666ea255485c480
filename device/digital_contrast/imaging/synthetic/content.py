"""Content items of a synthetic series: the model identity, provenance sequences, coded purposes."""

import re
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.valuerep import DT

from digital_contrast import MANUFACTURER, PRODUCT_NAME, __version__
from digital_contrast.imaging.volume import SourceSeries

SOURCE_IMAGE_PURPOSE = codes.DCM.SourceImageForImageProcessingOperation  # (121322, DCM)
SYNTHESIZING_EQUIPMENT = codes.DCM.SynthesizingEquipment  # (109100, DCM)
ACQUISITION_EQUIPMENT = codes.DCM.AcquisitionEquipment  # (109101, DCM)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SynthesizingModel:
    """The model bundle that produced a synthetic image."""

    name: str
    version: str
    bundle_sha256: str
    notice: str | None = None  # the use case's: what the output must not be used for

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.version.strip():
            raise ValueError("model name and version must not be empty")
        if not _SHA256.match(self.bundle_sha256):
            raise ValueError("bundle_sha256 must be 64 lower-case hexadecimal characters")

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def source_image_item(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    item.PurposeOfReferenceCodeSequence = [code_item(SOURCE_IMAGE_PURPOSE)]
    return item


def contributing_equipment(source: SourceSeries, model: SynthesizingModel,
                           created: datetime) -> list[Dataset]:
    """This product as Synthesizing Equipment, and the scanner kept as Acquisition Equipment."""
    ours = Dataset()
    ours.Manufacturer = MANUFACTURER
    ours.ManufacturerModelName = PRODUCT_NAME
    ours.SoftwareVersions = [__version__, model.label]
    ours.PurposeOfReferenceCodeSequence = [code_item(SYNTHESIZING_EQUIPMENT)]
    ours.ContributionDateTime = DT(created)
    ours.ContributionDescription = (
        f"Synthetic contrast enhancement by model {model.label} "
        f"(bundle sha256 {model.bundle_sha256[:16]}); no contrast agent was administered")[:1024]

    scanner = Dataset()
    header = source.header
    scanner.Manufacturer = header.get("Manufacturer") or "UNKNOWN"
    for keyword in ("InstitutionName", "StationName", "ManufacturerModelName",
                    "DeviceSerialNumber", "SoftwareVersions"):
        if header.get(keyword):
            setattr(scanner, keyword, header.get(keyword))
    scanner.PurposeOfReferenceCodeSequence = [code_item(ACQUISITION_EQUIPMENT)]
    return [ours, scanner]

"""What a viewer reads besides the files: instance-level QIDO results, WADO-RS metadata (PS3.18
10.4.1.1.2) and frames (10.4.1.1.3).

Metadata is each stored instance's data set as DICOM JSON, without its pixel data and without
binary values over BULK_LIMIT bytes (a viewer gets pixels as frames). Frames are the native,
little-endian bytes of the requested frames, decoded first where the file is compressed, so a
viewer that asks for `application/octet-stream` gets what it can draw.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode

BULK_LIMIT = 64 * 1024
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
FRAME_SYNTAX = ExplicitVRLittleEndian  # what frame bytes are: native, little endian


def metadata_json(ds: Dataset) -> dict[str, Any]:
    """The data set (pixel data and large binary values left out) as DICOM JSON."""
    kept = Dataset()
    for element in ds:
        if element.tag == 0x7FE00010 or (element.VR in _BINARY_VRS and element.value is not None
                                         and len(element.value) > BULK_LIMIT):
            continue
        kept.add(element)
    return kept.to_json_dict()


def with_included(result: dict[str, Any], header: Dataset | None, keywords: frozenset[str],
                  include_all: bool) -> dict[str, Any]:
    """A QIDO-RS result with the includefield attributes it lacks, read from a stored header
    (`all`: every attribute of the header but pixels and large binary values)."""
    if header is None or not (keywords or include_all):
        return result
    extra = metadata_json(header) if include_all else metadata_json(Dataset(
        {e.tag: e for e in (header[k] for k in keywords if k in header)}))
    merged = {tag: value for tag, value in extra.items() if tag not in result} | result
    return {tag: merged[tag] for tag in sorted(merged)}


def instance_result(ds: Dataset, retrieve_url: str) -> dict[str, Any]:
    """One instance of an instance-level QIDO-RS response (PS3.18 Table 10.6.3-5)."""
    out = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns",
                    "BitsAllocated", "NumberOfFrames", "StudyInstanceUID",
                    "SeriesInstanceUID"):
        setattr(out, keyword, ds.get(keyword, ""))
    out.RetrieveURL = retrieve_url
    json = out.to_json_dict()
    return {tag: json[tag] for tag in sorted(json)}


def parse_frame_list(text: str) -> list[int]:
    """`1,3,4` -> [1, 3, 4]; frame numbers start at 1 (PS3.18 8.3.3.2)."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or any(n < 1 for n in numbers) or len(numbers) > 10_000:
        raise DicomWebError(DicomWebErrorCode.BAD_FRAMES,
                            "frames are a comma-separated list of numbers from 1")
    return numbers


def frame_bytes(ds: Dataset, numbers: Sequence[int]) -> list[bytes]:
    """The native bytes of each requested frame (NOT_FOUND for one beyond the last)."""
    count = int(ds.get("NumberOfFrames") or 1)
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise DicomWebError(DicomWebErrorCode.FRAME_NOT_FOUND,
                            f"the instance has {count} frame(s); asked for {beyond[0]}", 404)
    if "PixelData" not in ds:
        raise DicomWebError(DicomWebErrorCode.FRAME_NOT_FOUND, "the instance has no pixel data",
                            404)
    if not ds.file_meta.TransferSyntaxUID.is_compressed and ds.BitsAllocated % 8 == 0 \
            and ds.file_meta.TransferSyntaxUID.is_little_endian:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) \
            * int(ds.BitsAllocated) // 8
        data = ds.PixelData
        return [bytes(data[(n - 1) * size:n * size]) for n in numbers]
    pixels = ds.pixel_array
    frames = pixels if count > 1 else pixels[np.newaxis]
    return [np.ascontiguousarray(frames[n - 1]).astype(frames.dtype.newbyteorder("<"))
            .tobytes() for n in numbers]

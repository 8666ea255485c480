"""DICOM CT series -> `Volume`: correct, not forgiving.

Every file is parsed once; the series is checked as a whole (one series, one frame of reference,
one orientation and matrix, no duplicates, gaps, uneven spacing or tilt) before any pixel is
decoded, and every refusal is an `ImagingError` with a stable code. No slice is ever dropped.
"""

import io
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, CTImageStorage

from digital_contrast.imaging import geometry
from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.safe_zip import DEFAULT_LIMITS, ZipLimits, iter_zip_members
from digital_contrast.imaging.volume import AIR_HU, SourceSeries, SourceSlice, Volume

SeriesSource = Path | str | bytes | Sequence[Path | str | bytes]

_LOSSLESS_SYNTAXES = {
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.5",
}
# Attributes that differ per slice and so do not belong to the shared series header.
_PER_SLICE = {"PixelData", "SOPInstanceUID", "InstanceNumber", "ImagePositionPatient",
              "SliceLocation", "RescaleIntercept", "RescaleSlope", "AcquisitionTime",
              "ContentTime", "LargestImagePixelValue", "SmallestImagePixelValue",
              "WindowCenter", "WindowWidth", "DataCollectionCenterPatient",
              "ReconstructionTargetCenterPatient", "TablePosition", "ExposureTime",
              "XRayTubeCurrent", "Exposure", "CTDIvol"}
_REQUIRED = ("SeriesInstanceUID", "SOPInstanceUID", "Rows", "Columns", "PixelSpacing",
             "ImageOrientationPatient", "ImagePositionPatient", "BitsAllocated")


def read_series(source: SeriesSource, *, zip_limits: ZipLimits = DEFAULT_LIMITS) -> Volume:
    """Read one CT series from a folder, a zip file, zip or DICOM bytes, or a list of files."""
    return volume_from_datasets([_parse(name, data)
                                 for name, data in _iter_files(source, zip_limits)])


def volume_from_datasets(datasets: Sequence[Dataset]) -> Volume:
    """Check parsed instances as one CT series and assemble the volume."""
    if not datasets:
        raise ImagingError(ImagingErrorCode.EMPTY, "no files were found in the input")
    for ds in datasets:
        _check_instance(ds)
    _check_same(datasets)
    normal = geometry.slice_normal(datasets[0].ImageOrientationPatient)
    ordered = sorted(datasets, key=lambda ds: geometry.position_along(ds, normal))
    _check_unique(ordered)
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in ordered])
    if len(ordered) < 2:
        raise ImagingError(ImagingErrorCode.TOO_FEW_SLICES,
                           f"the series has {len(ordered)} slice; a volume needs at least 2")
    _check_tilt(ordered)
    slice_spacing = geometry.check_spacing(positions, normal)
    array, padding = _decode(ordered)
    affine = geometry.affine_from_dicom(ordered[0].ImageOrientationPatient,
                                        ordered[0].PixelSpacing, positions[0], normal,
                                        slice_spacing)
    return Volume(array=array, affine=affine, source=_source_series(ordered),
                  padding=padding if padding.any() else None)


def _iter_files(source: SeriesSource, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    if isinstance(source, bytes):
        yield from (iter_zip_members(source, limits) if _is_zip(source) else [("<bytes>", source)])
    elif isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            yield from ((str(p), p) for p in sorted(path.rglob("*"))
                        if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR")
        elif path.is_file() and _is_zip(_head(path)):
            yield from iter_zip_members(path, limits)
        elif path.is_file():
            yield str(path), path
        else:
            raise ImagingError(ImagingErrorCode.EMPTY, f"{path.name}: no such file or folder")
    else:
        for index, item in enumerate(source):
            yield (f"<bytes #{index}>", item) if isinstance(item, bytes) else (str(item),
                                                                              Path(item))


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(4)


def _is_zip(head: bytes) -> bool:
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _parse(name: str, data: bytes | Path) -> Dataset:
    label = Path(name).name
    try:
        ds = pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else data)
    except InvalidDicomError:
        raise ImagingError(ImagingErrorCode.NOT_DICOM,
                           f"{label} is not a DICOM file (no DICM preamble)") from None
    except (EOFError, ValueError, OSError, KeyError, TypeError, NotImplementedError) as exc:
        raise ImagingError(ImagingErrorCode.TRUNCATED,
                           f"{label} is truncated or damaged and cannot be read ({exc})") from None
    # pydicom stops quietly at a cut; a CT image (per its file meta) without pixel data is one.
    if "PixelData" not in ds and ds.file_meta.get("MediaStorageSOPClassUID") == CTImageStorage:
        raise ImagingError(ImagingErrorCode.TRUNCATED,
                           f"{label} ends before its pixel data: the file is truncated")
    return ds


def _check_instance(ds: Dataset) -> None:
    modality = ds.get("Modality", "")
    if modality != "CT":
        raise ImagingError(ImagingErrorCode.NOT_CT,
                           f"the series modality is {modality or 'missing'}, not CT")
    if ds.get("SOPClassUID") != CTImageStorage or "PixelData" not in ds:
        raise ImagingError(ImagingErrorCode.UNSUPPORTED_SOP_CLASS,
                           f"object class {UID(ds.get('SOPClassUID', '')).name or 'unknown'} is "
                           "not a single-frame CT Image with pixel data")
    missing = [k for k in _REQUIRED if ds.get(k) in (None, "")]
    if missing:
        raise ImagingError(ImagingErrorCode.MISSING_ATTRIBUTE,
                           f"slice {ds.get('InstanceNumber', '?')} lacks {', '.join(missing)}")


def _distinct(datasets: Sequence[Dataset], keyword: str) -> set[str]:
    return {str(ds.get(keyword, "")) for ds in datasets}


def _check_same(datasets: Sequence[Dataset]) -> None:
    series = _distinct(datasets, "SeriesInstanceUID")
    if len(series) > 1:
        raise ImagingError(ImagingErrorCode.MIXED_SERIES,
                           f"the input mixes {len(series)} series; send one series at a time")
    frames = _distinct(datasets, "FrameOfReferenceUID")
    if len(frames) > 1:
        raise ImagingError(ImagingErrorCode.MIXED_FRAME_OF_REFERENCE,
                           f"the slices belong to {len(frames)} frames of reference")
    first = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    for ds in datasets[1:]:
        if not np.allclose(np.array(ds.ImageOrientationPatient, dtype=float), first, atol=1e-4):
            raise ImagingError(ImagingErrorCode.MIXED_ORIENTATION,
                               "the slices do not all have the same orientation "
                               f"({list(first)} vs {list(ds.ImageOrientationPatient)})")
    matrix = {(int(ds.Rows), int(ds.Columns), *map(float, ds.PixelSpacing)) for ds in datasets}
    if len(matrix) > 1:
        raise ImagingError(ImagingErrorCode.INCONSISTENT_GEOMETRY,
                           f"the slices differ in matrix or pixel spacing: {sorted(matrix)}")


def _check_unique(ordered: Sequence[Dataset]) -> None:
    repeated = [uid for uid, n in Counter(str(ds.SOPInstanceUID) for ds in ordered).items()
                if n > 1]
    if repeated:
        raise ImagingError(ImagingErrorCode.DUPLICATE_SLICES,
                           f"{len(repeated)} SOP instance(s) appear more than once")


def _check_tilt(ordered: Sequence[Dataset]) -> None:
    tilts = {round(float(ds.get("GantryDetectorTilt") or 0.0), 3) for ds in ordered}
    if any(abs(t) > 0.01 for t in tilts):
        raise ImagingError(ImagingErrorCode.GANTRY_TILT,
                           f"the series was acquired with gantry tilt {max(tilts, key=abs)} deg; "
                           "tilted series are not supported")


def _decode(ordered: Sequence[Dataset]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = int(ordered[0].Rows), int(ordered[0].Columns)
    array = np.empty((len(ordered), rows, cols), dtype=np.float32)
    padding = np.zeros(array.shape, dtype=bool)
    for k, ds in enumerate(ordered):
        stored = _pixels(ds, k)
        pad = _padding_mask(ds, stored)
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        np.multiply(stored, slope, out=array[k], casting="unsafe")
        array[k] += intercept
        if pad is not None:
            array[k][pad] = AIR_HU
            padding[k] = pad
    return array, padding


def _pixels(ds: Dataset, k: int) -> np.ndarray:
    syntax = ds.file_meta.get("TransferSyntaxUID", UID("1.2.840.10008.1.2"))
    if not UID(syntax).is_compressed:
        expected = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8
        if len(ds.PixelData) < expected:
            raise ImagingError(ImagingErrorCode.TRUNCATED,
                               f"slice {k + 1} has {len(ds.PixelData)} bytes of pixel data, "
                               f"{expected} expected: the file is truncated")
    try:
        stored = ds.pixel_array
    except (NotImplementedError, RuntimeError) as exc:
        if "decod" in str(exc).lower() and "plugin" not in str(exc).lower():
            raise ImagingError(ImagingErrorCode.CORRUPT_PIXEL_DATA,
                               f"slice {k + 1}: compressed pixel data cannot be decoded") from None
        raise ImagingError(ImagingErrorCode.UNSUPPORTED_TRANSFER_SYNTAX,
                           f"pixel encoding {UID(syntax).name} is not supported") from None
    except (ValueError, EOFError) as exc:
        raise ImagingError(ImagingErrorCode.CORRUPT_PIXEL_DATA,
                           f"slice {k + 1}: pixel data is damaged ({exc})") from None
    if stored.shape != (int(ds.Rows), int(ds.Columns)):
        raise ImagingError(ImagingErrorCode.UNSUPPORTED_SOP_CLASS,
                           f"slice {k + 1} is not a single grayscale frame ({stored.shape})")
    return stored


def _padding_mask(ds: Dataset, stored: np.ndarray) -> np.ndarray | None:
    value = ds.get("PixelPaddingValue")
    if value is None:
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    if limit is None:
        return stored == value
    low, high = sorted((int(value), int(limit)))
    return (stored >= low) & (stored <= high)


def _source_series(ordered: Sequence[Dataset]) -> SourceSeries:
    first = ordered[0]
    header = Dataset()
    for element in first:
        if element.keyword not in _PER_SLICE:
            header.add(element)
    syntax = str(first.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    lossy = any(ds.get("LossyImageCompression") == "01" or
                str(ds.file_meta.get("TransferSyntaxUID", "")) not in _LOSSLESS_SYNTAXES
                for ds in ordered)
    slices = tuple(SourceSlice(str(ds.SOPInstanceUID), str(ds.SOPClassUID),
                               tuple(float(v) for v in ds.ImagePositionPatient))
                   for ds in ordered)
    return SourceSeries(header=header, slices=slices, transfer_syntax_uid=syntax, lossy=lossy)

"""Image Pixel module sanity at intake (PS3.3 C.7.6.3, CT Image C.8.2.1.1), from the header
alone: nothing is decoded, so a tiny compressed frame that claims a huge image costs nothing.

Limits (docs/clinical-integration.md, 'What intake refuses'):
- Rows and Columns 1..MAX_DIMENSION. CT is reconstructed at 512 x 512, some scanners at 1024
  or 2048; 4096 leaves room for every clinical CT and secondary capture while a frame stays
  at most 32 MiB at 16 bits.
- NumberOfFrames 1..MAX_FRAMES (an enhanced CT of a whole body at 0.5 mm has a few thousand).
- Decoded size (Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x frames) at most
  MAX_DECODED_BYTES, the default upload limit: what a job may have to hold decoded.
- Every image: BitsAllocated 8, 16 or 32; BitsStored 1..BitsAllocated; HighBit BitsStored - 1;
  SamplesPerPixel 1 or 3. The CT classes as their IODs say: SamplesPerPixel 1, MONOCHROME1 or
  MONOCHROME2, BitsAllocated 16, BitsStored 12..16.
- Native pixel data holds exactly the bytes the geometry needs (one padding byte to an even
  length allowed); encapsulated pixel data is item-framed with one frame per NumberOfFrames,
  and an RLE frame's header declares one segment per byte of a pixel sample (PS3.5 G.5).
"""

import struct
from dataclasses import dataclass
from itertools import pairwise

from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    LegacyConvertedEnhancedCTImageStorage,
    RLELossless,
)

from digital_contrast.intake.statuses import IntakeCode

MAX_DIMENSION = 4096
MAX_FRAMES = 10_000
MAX_DECODED_BYTES = 2 * 1024**3
_CT_CLASSES = frozenset({CTImageStorage, EnhancedCTImageStorage,
                         LegacyConvertedEnhancedCTImageStorage})
_GEOMETRY = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit")
_RLE_HEADER = 64


@dataclass(frozen=True)
class PixelProblem:
    """Why the pixel module is refused: `detail` names attributes, never their values' owner."""

    code: IntakeCode
    detail: str


@dataclass(frozen=True)
class _Geometry:
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    samples: int
    frames: int

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples * self.bits_allocated // 8


def is_image_class(sop_class: str) -> bool:
    """Image storage SOP classes carry the Image Pixel module (PS3.3 A.1.4)."""
    return "Image Storage" in (UID(sop_class).name or "")


def pixel_problem(ds: Dataset, sop_class: str, syntax: UID) -> PixelProblem | None:
    """The first problem of the pixel module of `ds`, or None when it is sane (or `ds` is not
    of an image class and has no Rows/Columns)."""
    image = is_image_class(sop_class)
    if not image and "Rows" not in ds and "Columns" not in ds:
        return None
    geometry = _geometry(ds)
    if geometry is None:
        return PixelProblem(IntakeCode.IMAGE_INCOMPLETE, "its image pixel description (Rows, "
                            "Columns, BitsAllocated, BitsStored, HighBit) is missing or not a "
                            "number (the file may be truncated)")
    problem = _geometry_problem(geometry, ds, sop_class in _CT_CLASSES)
    if problem:
        return problem
    if "PixelData" not in ds:
        return PixelProblem(IntakeCode.IMAGE_INCOMPLETE, "it is an image without pixel data "
                            "(the file may be truncated)")
    if syntax.is_encapsulated:
        return _encapsulated_problem(ds.PixelData, geometry, syntax)
    return _native_problem(len(ds.PixelData), geometry)


def _geometry(ds: Dataset) -> _Geometry | None:
    try:
        values = [int(ds[keyword].value) for keyword in _GEOMETRY]
        samples = _count(ds.get("SamplesPerPixel"))
        frames = _count(ds.get("NumberOfFrames"))
    except (KeyError, TypeError, ValueError):
        return None
    return _Geometry(*values, samples=samples, frames=frames)


def _count(value: object) -> int:
    """An optional count: absent or empty is 1 (PS3.3 C.7.6.6), an explicit 0 stays 0."""
    return 1 if value is None or value == "" else int(value)  # type: ignore[call-overload]


def _geometry_problem(g: _Geometry, ds: Dataset, ct: bool) -> PixelProblem | None:
    if not (1 <= g.rows <= MAX_DIMENSION and 1 <= g.columns <= MAX_DIMENSION):
        return PixelProblem(IntakeCode.IMAGE_DIMENSIONS, f"its Rows and Columns must be 1 to "
                            f"{MAX_DIMENSION} (they are {g.rows} x {g.columns})")
    if not 1 <= g.frames <= MAX_FRAMES:
        return PixelProblem(IntakeCode.IMAGE_FRAMES, f"its NumberOfFrames must be 1 to "
                            f"{MAX_FRAMES} (it is {g.frames})")
    if g.bits_allocated not in ((16,) if ct else (8, 16, 32)) or \
            not (12 if ct else 1) <= g.bits_stored <= g.bits_allocated or \
            g.high_bit != g.bits_stored - 1:
        wanted = "16, 12..16" if ct else "8/16/32, 1..BitsAllocated"
        return PixelProblem(IntakeCode.IMAGE_BITS, f"its BitsAllocated {g.bits_allocated}, "
                            f"BitsStored {g.bits_stored}, HighBit {g.high_bit} are not "
                            f"{wanted}, BitsStored - 1")
    photometric = str(ds.get("PhotometricInterpretation", "") or "")
    if g.samples not in ((1,) if ct else (1, 3)) or \
            (ct and photometric not in ("MONOCHROME1", "MONOCHROME2")):
        wanted = "1, MONOCHROME1 or MONOCHROME2" if ct else "1 or 3"
        return PixelProblem(IntakeCode.IMAGE_SAMPLES, f"its SamplesPerPixel {g.samples} and "
                            f"PhotometricInterpretation {photometric or '(none)'} are not "
                            f"{wanted}")
    if g.frame_bytes * g.frames > MAX_DECODED_BYTES:
        return PixelProblem(IntakeCode.IMAGE_DECODED_SIZE, f"its pixels would decode to "
                            f"{g.frame_bytes * g.frames} bytes (limit {MAX_DECODED_BYTES})")
    return None


def _native_problem(length: int, g: _Geometry) -> PixelProblem | None:
    expected = g.frame_bytes * g.frames
    # The value has an even length (PS3.5 7.1.1): one padding byte after an odd count.
    if length == expected or (expected % 2 and length == expected + 1):
        return None
    short = length < expected
    return PixelProblem(IntakeCode.IMAGE_PIXEL_LENGTH, f"its pixel data has {length} bytes "
                        f"where its rows, columns, samples, bits and frames need {expected}"
                        f"{' (truncated)' if short else ''}")


def _encapsulated_problem(data: bytes, g: _Geometry, syntax: UID) -> PixelProblem | None:
    try:
        frames = list(generate_frames(data, number_of_frames=g.frames))
    except (ValueError, struct.error, EOFError):
        return PixelProblem(IntakeCode.IMAGE_FRAGMENTS, "its encapsulated pixel data is not a "
                            "sequence of items with one frame per NumberOfFrames")
    if len(frames) != g.frames or not all(frames):
        return PixelProblem(IntakeCode.IMAGE_FRAGMENTS, f"its encapsulated pixel data holds "
                            f"{len(frames)} frame(s) where NumberOfFrames says {g.frames}")
    if syntax == RLELossless:
        segments = g.samples * g.bits_allocated // 8
        if not all(_rle_header_fits(frame, segments) for frame in frames):
            return PixelProblem(IntakeCode.IMAGE_FRAGMENTS, f"an RLE frame's header does not "
                                f"declare {segments} segment(s) inside the frame")
    return None


def _rle_header_fits(frame: bytes, segments: int) -> bool:
    """PS3.5 G.5: a 64-byte header, the segment count then ascending offsets in the frame."""
    if len(frame) <= _RLE_HEADER:
        return False
    count, *offsets = struct.unpack("<16L", frame[:_RLE_HEADER])
    used = offsets[:count]
    return count == segments and used[0] == _RLE_HEADER and \
        all(a < b for a, b in pairwise(used)) and used[-1] < len(frame)

"""Untrusted zip archives: every entry vetted before any content is decompressed."""

import io
import zipfile

import pytest

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode
from digital_contrast.imaging.safe_zip import DEFAULT_LIMITS, ZipLimits, iter_zip_members
from digital_contrast.imaging.series_reader import read_series
from tests.support.ct_series import ct_slices, to_bytes

C = ImagingErrorCode


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _code(source: bytes, limits: ZipLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(ImagingError) as info:
        list(iter_zip_members(source, limits))
    return info.value.code


@pytest.mark.req("SRS-IMG-009")
def test_empty_zip_is_refused_as_empty() -> None:
    with pytest.raises(ImagingError) as info:
        read_series(_zip({}))
    assert info.value.code == C.EMPTY.value


@pytest.mark.req("SRS-IMG-009")
@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil.dcm", "/etc/passwd",
                                  "C:/windows/evil.dcm", "..\\evil.dcm"])
def test_path_traversal_names_are_refused(name: str) -> None:
    assert _code(_zip({"ok.dcm": b"x", name: b"x"})) == C.ZIP_UNSAFE_PATH.value


@pytest.mark.req("SRS-IMG-009")
def test_symlink_member_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    assert _code(buffer.getvalue()) == C.ZIP_UNSAFE_PATH.value


@pytest.mark.req("SRS-IMG-009")
def test_zip_bomb_is_refused_before_decompression() -> None:
    bomb = _zip({"bomb.dcm": b"\0" * (64 * 1024**2)})  # 64 MiB of zeros: ~1000-fold
    assert len(bomb) < 200 * 1024
    assert _code(bomb) == C.ZIP_TOO_LARGE.value


@pytest.mark.req("SRS-IMG-009")
def test_total_size_and_member_count_limits() -> None:
    data = _zip({f"f{i}.dcm": bytes(range(256)) * 40 for i in range(5)}, zipfile.ZIP_STORED)
    assert _code(data, ZipLimits(max_total_bytes=30_000)) == C.ZIP_TOO_LARGE.value
    assert _code(data, ZipLimits(max_members=4)) == C.ZIP_TOO_LARGE.value
    assert len(list(iter_zip_members(data, ZipLimits(max_members=5)))) == 5


@pytest.mark.req("SRS-IMG-009")
def test_corrupt_archive_is_refused() -> None:
    assert _code(b"PK\x03\x04" + b"garbage" * 20) == C.ZIP_INVALID.value
    good = bytearray(_zip({"a.dcm": b"hello world" * 100}))
    good[60:80] = b"\xff" * 20  # damage the compressed stream
    assert _code(bytes(good)) == C.ZIP_INVALID.value


@pytest.mark.req("SRS-IMG-009", "SRS-IMG-001")
def test_archiver_clutter_is_ignored_and_series_read() -> None:
    datasets, hu = ct_slices(n=3)
    entries = {f"series/{i}.dcm": to_bytes(ds) for i, ds in enumerate(datasets)}
    entries |= {"__MACOSX/series/._0.dcm": b"junk", "DICOMDIR": b"junk", "series/": b""}
    volume = read_series(_zip(entries))
    assert volume.shape == hu.shape

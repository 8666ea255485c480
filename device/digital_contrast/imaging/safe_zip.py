"""Reading untrusted zip archives in memory: no extraction, no path tricks, bounded size.

What an archive may unpack to is checked twice: from the central directory before anything
is decompressed (every member's declared size counts, however small), and while each member
is decompressed (its real bytes, since headers can lie). Members are read one at a time.
Member names are never quoted in errors: archive folders are often named after patients.
"""

import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_NESTED_SUFFIXES = (".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz")
# Entries that archivers add and that are never images.
_IGNORED_PREFIXES = ("__MACOSX/",)
_IGNORED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class ZipLimits:
    max_total_bytes: int = 2 * 1024**3
    max_members: int = 20_000
    # DICOM slices compress about 2-5x; a far higher ratio on a large member, or for the
    # archive as a whole (many small members), is a bomb.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024**2  # below this a ratio says nothing (a member, or in all)


DEFAULT_LIMITS = ZipLimits()


def _check_name(name: str, number: int) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ImagingError(ImagingErrorCode.ZIP_UNSAFE_PATH,
                           f"the name of archive member {number} points outside the archive")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _members(archive: zipfile.ZipFile, limits: ZipLimits, archive_bytes: int
             ) -> list[tuple[int, zipfile.ZipInfo]]:
    """Validate every entry from the central directory before any content is decompressed;
    the file members with their numbers in the archive (errors name members by number)."""
    members, total = [], 0
    for number, info in enumerate(archive.infolist(), start=1):
        _check_name(info.filename, number)
        if _is_symlink(info):
            raise ImagingError(ImagingErrorCode.ZIP_UNSAFE_PATH,
                               f"archive member {number} is a symbolic link")
        name = PurePosixPath(info.filename)
        if info.is_dir() or info.filename.startswith(_IGNORED_PREFIXES) or \
                name.name in _IGNORED_NAMES:
            continue
        if info.flag_bits & 0x1:
            raise ImagingError(ImagingErrorCode.ZIP_INVALID,
                               f"archive member {number} is encrypted")
        if name.name.lower().endswith(_NESTED_SUFFIXES):
            raise _nested(number)
        members.append((number, info))
        if len(members) > limits.max_members:
            raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                               f"the archive holds more than {limits.max_members} files")
        total += info.file_size
        _check_total(total, limits)
        # A compressed size is only what the header says: never more than the archive holds.
        _check_ratio(info.file_size, min(info.compress_size, archive_bytes), limits,
                     f"archive member {number}")
    _check_ratio(total, archive_bytes, limits, "the archive")
    return members


def _check_total(total: int, limits: ZipLimits) -> None:
    if total > limits.max_total_bytes:
        raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                           f"the archive unpacks to more than {limits.max_total_bytes} bytes")


def _check_ratio(unpacked: int, packed: int, limits: ZipLimits, what: str) -> None:
    if unpacked > limits.ratio_floor_bytes and unpacked > limits.max_ratio * max(packed, 1):
        raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                           f"{what} expands {unpacked / max(packed, 1):.0f}-fold "
                           f"(limit {limits.max_ratio:.0f}): refused as a zip bomb")


def _nested(number: int) -> ImagingError:
    return ImagingError(ImagingErrorCode.ZIP_NESTED, f"archive member {number} is itself an "
                        "archive: unpack it and send its files (archives are not opened inside "
                        "archives)")


def iter_zip_members(source: Path | bytes, limits: ZipLimits = DEFAULT_LIMITS
                     ) -> Iterator[tuple[str, bytes]]:
    """Yield (name, content) of each file member; every entry is checked before the first read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ImagingError(ImagingErrorCode.ZIP_INVALID, f"not a readable zip archive ({exc})") \
            from None
    with archive:
        members = _members(archive, limits, len(source) if isinstance(source, bytes)
                           else source.stat().st_size)
        total = 0
        for number, info in members:
            content = _read_member(archive, info, number)
            total += len(content)
            _check_total(total, limits)  # real bytes: the headers may have lied
            yield info.filename, content


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, number: int) -> bytes:
    try:
        # zipfile stops at the declared size and checks the CRC, so a member whose header
        # under-declares its size fails here (ZIP_INVALID) instead of growing past it.
        with archive.open(info) as member:
            content = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise ImagingError(ImagingErrorCode.ZIP_INVALID,
                           f"archive member {number} is corrupt or does not match its declared "
                           f"size and checksum ({type(exc).__name__})") from None
    if len(content) > info.file_size:
        raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                           f"archive member {number} unpacks past its declared size")
    if content.startswith(_ZIP_MAGIC):
        raise _nested(number)
    return content

"""Reading untrusted zip archives in memory: no extraction, no path tricks, bounded size."""

import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from digital_contrast.imaging.errors import ImagingError, ImagingErrorCode

# Entries that archivers add and that are never images.
_IGNORED_PREFIXES = ("__MACOSX/",)
_IGNORED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class ZipLimits:
    max_total_bytes: int = 2 * 1024**3
    max_members: int = 20_000
    # DICOM slices compress about 2-5x; a far higher ratio on a large member is a bomb.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024**2  # ratios of tiny members say nothing


DEFAULT_LIMITS = ZipLimits()


def _check_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ImagingError(ImagingErrorCode.ZIP_UNSAFE_PATH,
                           f"the archive member name {name!r} points outside the archive")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _members(archive: zipfile.ZipFile, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """Validate every entry from the central directory before any content is decompressed."""
    members, total = [], 0
    for info in archive.infolist():
        _check_name(info.filename)
        if _is_symlink(info):
            raise ImagingError(ImagingErrorCode.ZIP_UNSAFE_PATH,
                               f"the archive member {info.filename!r} is a symbolic link")
        name = PurePosixPath(info.filename)
        if info.is_dir() or info.filename.startswith(_IGNORED_PREFIXES) or \
                name.name in _IGNORED_NAMES:
            continue
        if info.flag_bits & 0x1:
            raise ImagingError(ImagingErrorCode.ZIP_INVALID,
                               f"the archive member {info.filename!r} is encrypted")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                               f"the archive unpacks to more than {limits.max_total_bytes} bytes")
        if info.file_size > limits.ratio_floor_bytes and \
                info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                               f"the archive member {info.filename!r} expands "
                               f"{info.file_size / max(info.compress_size, 1):.0f}-fold "
                               f"(limit {limits.max_ratio:.0f}): refused as a zip bomb")
        members.append(info)
        if len(members) > limits.max_members:
            raise ImagingError(ImagingErrorCode.ZIP_TOO_LARGE,
                               f"the archive holds more than {limits.max_members} files")
    return members


def iter_zip_members(source: Path | bytes, limits: ZipLimits = DEFAULT_LIMITS
                     ) -> Iterator[tuple[str, bytes]]:
    """Yield (name, content) of each file member; every entry is checked before the first read."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ImagingError(ImagingErrorCode.ZIP_INVALID, f"not a readable zip archive ({exc})") \
            from None
    with archive:
        members = _members(archive, limits)
        for info in members:
            try:
                # zipfile stops at the declared size and checks the CRC, so a member cannot
                # decompress past what the central directory admitted to.
                with archive.open(info) as member:
                    yield info.filename, member.read(info.file_size + 1)
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
                raise ImagingError(ImagingErrorCode.ZIP_INVALID,
                                   f"the archive member {info.filename!r} is corrupt ({exc})") \
                    from None

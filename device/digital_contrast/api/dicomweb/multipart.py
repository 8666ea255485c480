"""multipart/related bodies (RFC 2046, RFC 2387) as DICOMweb uses them (PS3.18 8.6.1.2).

Reading: `MultipartRelatedParser` is a push parser fed with chunks (sync or async streams);
`iter_multipart_related` and `parse_multipart_related` wrap it. Each byte is searched once: the
buffer never holds more than one part plus one chunk, so hundreds of megabytes parse in linear
time. Writing: `build_multipart_related` streams parts given as bytes or file paths.
"""

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.api.dicomweb.urls import is_uid

DICOM = "application/dicom"
FEED_CHUNK = 1 << 20  # bytes handed to the parser at a time when the whole body is given

# RFC 2046 5.1.1 allows 70 characters; what real senders use is accepted beyond that (Orthanc
# 1.10's DICOMweb client sends two UUIDs joined, 73), up to a bound that keeps framing cheap.
_MAX_BOUNDARY = 200
_MAX_PADDING = 256  # linear white space allowed between a boundary and its CRLF
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf';\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*')
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN}/{_TOKEN})\s*")

Bytes = bytes | bytearray | memoryview
PartSource = Bytes | Path


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` (lower case) and its parameters (names lower case, quotes removed)."""
    match = _MEDIA_TYPE.match(value)
    if match is None:
        return "", {}
    params: dict[str, str] = {}
    pos = match.end()
    while pos < len(value):
        param = _PARAM.match(value, pos)
        if param is None:  # a malformed parameter: skip it, keep reading the others
            pos = value.find(";", pos + 1)
            if pos < 0:
                break
            continue
        raw = param.group(2)
        params[param.group(1).lower()] = (re.sub(r"\\(.)", r"\1", raw[1:-1])
                                          if raw.startswith('"') else raw)
        pos = param.end()
    return match.group(1).lower(), params


class PartHeaders(Mapping[str, str]):
    """The header fields of one part; names are case-insensitive, as in MIME."""

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = {name.strip().lower(): value.strip() for name, value in fields}

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"PartHeaders({self._fields!r})"


@dataclass(frozen=True)
class Part:
    """One body part. `media_type` is its own Content-Type or, when it has none, the `type`
    parameter of the message (RFC 2387 3.1); a part that is not `application/dicom` is not a
    whole-request error: the STOW-RS response lists it as failed."""

    index: int
    headers: PartHeaders
    body: bytes = field(repr=False)
    media_type: str

    @property
    def is_dicom(self) -> bool:
        return self.media_type == DICOM


class MultipartRelatedParser:
    """Push parser for `multipart/related; type="application/dicom"; boundary=...`.

    `feed()` returns the parts completed by a chunk, `close()` the rest and checks the end.
    Header problems raise at construction: STOW_MEDIA_TYPE (415) for another media type or
    `type`, STOW_MALFORMED (400) for a missing or invalid boundary. Framing problems raise
    STOW_MALFORMED when met, possibly after earlier parts were returned: a caller that stages
    parts must drop them on any error.
    """

    def __init__(self, content_type_header: str | None, *, expected_type: str = DICOM) -> None:
        media_type, params = parse_media_type(content_type_header or "")
        if media_type != "multipart/related":
            raise DicomWebError(DicomWebErrorCode.STOW_MEDIA_TYPE,
                                f"the request body is {media_type or 'of no stated type'}; "
                                f'send multipart/related; type="{expected_type}"')
        declared = parse_media_type(params["type"])[0] if "type" in params else None
        if declared is not None and declared != expected_type:
            raise DicomWebError(DicomWebErrorCode.STOW_MEDIA_TYPE,
                                f"multipart/related of {declared or 'an unreadable type'} is not "
                                f"supported; only {expected_type} parts are accepted")
        boundary = params.get("boundary", "")
        if not boundary:
            raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED,
                                "the Content-Type header has no boundary parameter")
        if len(boundary) > _MAX_BOUNDARY or not (boundary.isascii() and boundary.isprintable()):
            raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED,
                                f"the boundary must be 1 to {_MAX_BOUNDARY} printable ASCII "
                                "characters")
        self.expected_type = expected_type
        self.declared_type = declared
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        # A virtual CRLF lets the first boundary (at the very start) match like the others.
        self._buffer = bytearray(b"\r\n")
        self._search_from = 0
        self._in_preamble = True
        self._closed = False
        self._count = 0

    def feed(self, chunk: Bytes) -> list[Part]:
        if self._closed:
            return []  # epilogue: ignored (RFC 2046 5.1.1)
        self._buffer += chunk
        return self._drain()

    def close(self) -> list[Part]:
        parts = self._drain()
        if not self._closed:
            raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED,
                                "the body ends before its closing boundary: it is truncated")
        if self._count == 0:
            raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED, "the body has no parts")
        return parts

    def _drain(self) -> list[Part]:
        parts: list[Part] = []
        buffer, delimiter = self._buffer, self._delimiter
        while not self._closed:
            at = buffer.find(delimiter, self._search_from)
            if at < 0:
                # Keep enough of the tail for a delimiter split across chunks.
                self._search_from = max(0, len(buffer) - len(delimiter) + 1)
                break
            kind, after = self._line_end(at + len(delimiter))
            if kind == "more":
                self._search_from = at
                break
            if kind == "none":  # the boundary text followed by other bytes: content
                self._search_from = at + 1
                continue
            if not self._in_preamble:
                parts.append(self._part(at))
            self._in_preamble = False
            del buffer[:after]  # bytearray drops its head without moving the rest
            self._search_from = 0
            if kind == "close":
                self._closed = True
                buffer.clear()
        return parts

    def _line_end(self, pos: int) -> tuple[str, int]:
        """What follows a delimiter: 'close' (`--`), 'part' (padding, CRLF), 'none' or 'more'."""
        buffer = self._buffer
        if len(buffer) - pos < 2:
            return "more", pos
        if buffer[pos:pos + 2] == b"--":
            return "close", pos + 2
        end = pos
        while end < len(buffer) and buffer[end] in b" \t" and end - pos < _MAX_PADDING:
            end += 1
        if len(buffer) - end < 2:
            return ("none", pos) if end - pos >= _MAX_PADDING else ("more", pos)
        return ("part", end + 2) if buffer[end:end + 2] == b"\r\n" else ("none", pos)

    def _part(self, end: int) -> Part:
        index = self._count
        self._count += 1
        buffer = self._buffer
        if buffer.startswith(b"\r\n"):  # no header fields at all
            header_end, body_start = 0, 2
        else:
            header_end = buffer.find(b"\r\n\r\n", 0, end)
            if header_end < 0:
                raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED,
                                    f"part {index + 1} has no blank line after its headers")
            body_start = header_end + 4
        headers = _headers(bytes(buffer[:header_end]), index)
        with memoryview(buffer) as view:
            body = view[body_start:end].tobytes()  # one copy, straight out of the buffer
        # A part's own Content-Type wins, even unreadable; only a part without one inherits.
        media_type = (parse_media_type(headers["content-type"])[0] if "content-type" in headers
                      else self.declared_type or "")
        if self.declared_type is None and media_type != self.expected_type:
            raise DicomWebError(DicomWebErrorCode.STOW_MEDIA_TYPE,
                                "the Content-Type header has no type parameter and part "
                                f"{index + 1} is {media_type or 'of no stated type'}, not "
                                f"{self.expected_type}")
        return Part(index=index, headers=headers, body=body, media_type=media_type)


def _headers(block: bytes, index: int) -> PartHeaders:
    fields: list[tuple[str, str]] = []
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        if line[0] in " \t" and fields:  # folded continuation line (RFC 5322 2.2.3)
            fields[-1] = (fields[-1][0], f"{fields[-1][1]} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(_TOKEN, name.strip()):
            raise DicomWebError(DicomWebErrorCode.STOW_MALFORMED,
                                f"part {index + 1} has a malformed header line")
        fields.append((name, value))
    return PartHeaders(fields)


def iter_multipart_related(body: Bytes | Iterable[Bytes], content_type_header: str | None,
                           *, expected_type: str = DICOM) -> Iterator[Part]:
    """Parts of a body given whole or as chunks, yielded as soon as each one is complete."""
    parser = MultipartRelatedParser(content_type_header, expected_type=expected_type)
    for chunk in _chunks(body):
        yield from parser.feed(chunk)
    yield from parser.close()


def parse_multipart_related(body: Bytes | Iterable[Bytes], content_type_header: str | None,
                            *, expected_type: str = DICOM) -> list[Part]:
    """All parts of a body; any framing error refuses the whole request (see the parser)."""
    return list(iter_multipart_related(body, content_type_header, expected_type=expected_type))


def _chunks(body: Bytes | Iterable[Bytes]) -> Iterator[Bytes]:
    if isinstance(body, bytes | bytearray | memoryview):
        # Fed in slices so the parser's buffer stays one part plus one slice.
        view = memoryview(body)
        for start in range(0, len(view), FEED_CHUNK):
            yield view[start:start + FEED_CHUNK]
    else:
        yield from body


def build_multipart_related(parts: Iterable[PartSource], content_type: str = DICOM, *,
                            transfer_syntax: str | None = None,
                            chunk_size: int = FEED_CHUNK) -> tuple[Iterator[bytes], str]:
    """A streamed multipart/related body and its Content-Type header (WADO-RS responses).

    Parts are bytes or paths of files read in `chunk_size` pieces only when the body is
    iterated, so a series never has to be in memory at once. `transfer_syntax`, when given, is
    stated on each part (PS3.18 8.7.3.5.2). At least one part is required (an empty result is a
    404, not an empty message); the first is taken from `parts` at once to check that.
    """
    media_type, _ = parse_media_type(content_type)
    if not media_type or media_type != content_type.strip().lower():
        raise ValueError(f"content_type must be a bare media type, not {content_type!r}")
    iterator = iter(parts)
    first = next(iterator, None)
    if first is None:
        raise ValueError("a multipart/related message needs at least one part")
    if transfer_syntax is not None and not is_uid(transfer_syntax):
        raise ValueError(f"transfer_syntax must be a UID, not {transfer_syntax!r}")
    # 128 random bits: the chance that it occurs inside a part is negligible, and scanning
    # every file for it first would read the whole series twice.
    boundary = f"dc-{secrets.token_hex(16)}"
    part_type = media_type + (f"; transfer-syntax={transfer_syntax}" if transfer_syntax else "")
    header = f"multipart/related; type=\"{media_type}\"; boundary={boundary}"

    def body() -> Iterator[bytes]:
        opening = f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("ascii")
        for part in chain([first], iterator):
            yield opening
            yield from _part_chunks(part, chunk_size)
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode("ascii")

    return body(), header


def _part_chunks(part: PartSource, chunk_size: int) -> Iterator[bytes]:
    if isinstance(part, Path):
        with part.open("rb") as file:
            while chunk := file.read(chunk_size):
                yield chunk
    elif isinstance(part, bytes | bytearray | memoryview):
        yield bytes(part)
    else:
        raise TypeError(f"a part must be bytes or a Path, not {type(part).__name__}")

"""multipart/related: round trips, framing variants, every whole-request refusal, large bodies."""

from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import pytest

from digital_contrast.api.dicomweb.errors import DicomWebError, DicomWebErrorCode
from digital_contrast.api.dicomweb.multipart import (
    MultipartRelatedParser,
    build_multipart_related,
    parse_media_type,
    parse_multipart_related,
)

C = DicomWebErrorCode
CT = 'multipart/related; type="application/dicom"; boundary="b-1"'


def _body(*parts: bytes, boundary: str = "b-1", part_type: str = "application/dicom") -> bytes:
    out = b"".join(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + p + b"\r\n"
                   for p in parts)
    return out + f"--{boundary}--\r\n".encode()


def _refused(code: DicomWebErrorCode, body: bytes, content_type: str | None) -> DicomWebError:
    with pytest.raises(DicomWebError) as info:
        parse_multipart_related(body, content_type)
    assert info.value.code == code.value, info.value
    assert info.value.status == (415 if code == C.STOW_MEDIA_TYPE else 400)
    assert info.value.detail
    return info.value


@pytest.mark.req("SRS-DCMW-001", "SRS-DCMW-004")
def test_built_bodies_parse_back_to_the_same_parts(tmp_path: Path) -> None:
    bodies = [b"", b"x", b"\r\n\r\n--\r\n", bytes(range(256)) * 50, b"DICM" * 1000]
    on_disk = tmp_path / "instance.dcm"
    on_disk.write_bytes(b"from a file " * 10_000)
    chunks, header = build_multipart_related([*bodies, on_disk], chunk_size=4096)
    assert header.startswith('multipart/related; type="application/dicom"; boundary=')
    parts = parse_multipart_related(b"".join(chunks), header)
    assert [p.body for p in parts] == [*bodies, on_disk.read_bytes()]
    assert [p.index for p in parts] == list(range(len(bodies) + 1))
    assert all(p.is_dicom and p.headers["CONTENT-type"] == "application/dicom" for p in parts)
    # A fresh random boundary per message.
    assert build_multipart_related([b"a"])[1] != build_multipart_related([b"a"])[1]


@pytest.mark.req("SRS-DCMW-004")
def test_build_streams_lazily_and_states_the_transfer_syntax(tmp_path: Path) -> None:
    read: list[int] = []

    def parts() -> Iterator[bytes]:
        for k in range(3):
            read.append(k)
            yield bytes([k]) * 10

    chunks, header = build_multipart_related(parts(), transfer_syntax="1.2.840.10008.1.2.1")
    assert read == [0]  # only the first part is taken up front
    first = next(chunks)
    assert b"Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1" in first
    parsed = parse_multipart_related([first, *chunks], header)
    assert read == [0, 1, 2] and [p.body for p in parsed] == [bytes([k]) * 10 for k in range(3)]
    assert parsed[0].media_type == "application/dicom"
    with pytest.raises(ValueError, match="at least one part"):
        build_multipart_related([])
    with pytest.raises(ValueError, match="must be a UID"):
        build_multipart_related([b"a"], transfer_syntax="1.2;x")
    with pytest.raises(ValueError, match="bare media type"):
        build_multipart_related([b"a"], "application/dicom; charset=x")
    with pytest.raises(TypeError, match="bytes or a Path"):
        list(build_multipart_related([str(tmp_path)])[0])  # type: ignore[list-item]


@pytest.mark.req("SRS-DCMW-001")
def test_framing_variants_of_real_clients_are_read() -> None:
    # Leading CRLF (dicomweb-client), preamble, transport padding, unquoted boundary and type,
    # upper-case names, a part without headers inheriting the type, an epilogue, no final CRLF.
    body = (b"preamble to ignore\r\n--b-1  \t\r\nCONTENT-TYPE: Application/DICOM\r\n"
            b"X-Folded: a\r\n b\r\n\r\nfirst\r\n--b-1\r\n\r\nsecond\r\n--b-1--")
    header = "Multipart/Related; boundary=b-1; TYPE=application/dicom"
    parts = parse_multipart_related(body, header)
    assert [p.body for p in parts] == [b"first", b"second"]
    assert parts[0].headers["x-folded"] == "a b"
    assert parts[1].is_dicom and len(parts[1].headers) == 0
    assert parse_multipart_related(_body(b"a") + b"epilogue\r\n--b-1\r\n", CT)[0].body == b"a"
    # The boundary text inside content, not at a line start or not ending the line, is content.
    tricky = b"x--b-1\r\n\r\n--b-1x\r\n--b-1 y"
    assert parse_multipart_related(_body(tricky), CT)[0].body == tricky


@pytest.mark.req("SRS-DCMW-001")
def test_boundaries_longer_than_rfc_2046_allows_are_read() -> None:
    # Orthanc 1.10's DICOMweb plugin (1.7) joins two UUIDs: 73 characters, over RFC 2046's 70.
    boundary = "920b72d1-2910-48c9-b8ec-b3e54558eb20-920b72d1-2910-48c9-b8ec-b3e54558eb20"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n"
            f"--{boundary}--").encode()
    header = f'multipart/related; type="application/dicom"; boundary={boundary}'
    assert [p.body for p in parse_multipart_related(body, header)] == [b"first"]


@pytest.mark.req("SRS-DCMW-001")
def test_chunks_of_any_size_give_the_same_parts() -> None:
    body = _body(b"alpha" * 100, b"\r\n--b-", b"omega")
    expected = [b"alpha" * 100, b"\r\n--b-", b"omega"]
    for size in (1, 2, 3, 7, 64, len(body)):
        chunks = [body[i:i + size] for i in range(0, len(body), size)]
        assert [p.body for p in parse_multipart_related(iter(chunks), CT)] == expected
    parser = MultipartRelatedParser(CT)
    assert parser.feed(body[:20]) == []
    assert [p.body for p in parser.feed(body[20:]) + parser.close()] == expected


@pytest.mark.req("SRS-DCMW-001")
def test_the_type_parameter_may_be_absent_only_if_every_part_is_dicom() -> None:
    header = "multipart/related; boundary=b-1"
    assert [p.body for p in parse_multipart_related(_body(b"a", b"b"), header)] == [b"a", b"b"]
    error = _refused(C.STOW_MEDIA_TYPE, _body(b"a", part_type="text/plain"), header)
    assert "part 1" in error.detail


@pytest.mark.req("SRS-DCMW-001")
def test_a_part_of_another_type_is_reported_on_that_part_only() -> None:
    body = (b"--b-1\r\nContent-Type: application/dicom\r\n\r\na\r\n"
            b"--b-1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ntext\r\n"
            b"--b-1\r\nContent-Type: ???\r\n\r\nodd\r\n--b-1--\r\n")
    parts = parse_multipart_related(body, CT)
    assert [(p.body, p.media_type, p.is_dicom) for p in parts] == [
        (b"a", "application/dicom", True), (b"text", "text/plain", False),
        (b"odd", "", False)]  # an unreadable type of its own is not inherited


@pytest.mark.req("SRS-DCMW-001")
@pytest.mark.parametrize(("content_type", "code"), [
    (None, C.STOW_MEDIA_TYPE),
    ("", C.STOW_MEDIA_TYPE),
    ("application/dicom", C.STOW_MEDIA_TYPE),
    ("multipart/form-data; boundary=b-1", C.STOW_MEDIA_TYPE),
    ('multipart/related; type="application/dicom+json"; boundary=b-1', C.STOW_MEDIA_TYPE),
    ('multipart/related; type="application/octet-stream"; boundary=b-1', C.STOW_MEDIA_TYPE),
    ('multipart/related; type="application/dicom"', C.STOW_MALFORMED),
    ('multipart/related; type="application/dicom"; boundary=""', C.STOW_MALFORMED),
    ('multipart/related; type="application/dicom"; boundary=' + "b" * 201, C.STOW_MALFORMED),
    ('multipart/related; type="application/dicom"; boundary="b\tc"', C.STOW_MALFORMED),
    ('multipart/related; type="application/dicom"; boundary=bé', C.STOW_MALFORMED),
])
def test_request_headers_that_are_refused(content_type: str | None,
                                          code: DicomWebErrorCode) -> None:
    _refused(code, _body(b"a"), content_type)


@pytest.mark.req("SRS-DCMW-001")
@pytest.mark.parametrize(("body", "words"), [
    (b"", "truncated"),
    (b"no boundary anywhere", "truncated"),
    (_body(b"a", b"b")[:-12], "truncated"),  # cut inside the last part
    (_body(b"a")[:-9], "truncated"),  # cut right after the last part's content
    (_body(b"a").replace(b"--b-1--", b"--b-1"), "truncated"),
    (b"--b-1--\r\n", "no parts"),
    (b"--b-1\r\nContent-Type: application/dicom\r\nno blank line\r\n--b-1--", "blank line"),
    (b"--b-1\r\nnot a header\r\n\r\nx\r\n--b-1--", "malformed header"),
])
def test_bodies_that_are_refused(body: bytes, words: str) -> None:
    assert words in _refused(C.STOW_MALFORMED, body, CT).detail


@pytest.mark.req("SRS-DCMW-001")
def test_media_type_parameters_are_read_like_http() -> None:
    assert parse_media_type('Multipart/Related ; Type = "application/dicom" ; boundary="a;b"') \
        == ("multipart/related", {"type": "application/dicom", "boundary": "a;b"})
    assert parse_media_type(r'a/b; x="q\"uote"') == ("a/b", {"x": 'q"uote'})
    assert parse_media_type("not a media type") == ("", {})
    assert parse_media_type("multipart/related; junk; boundary=x")[1] == {"boundary": "x"}


@pytest.mark.req("SRS-DCMW-001")
def test_two_hundred_parts_of_a_megabyte_parse_correctly_from_bytes_and_chunks() -> None:
    # Content full of near-misses of the delimiter: the parser must neither split on them nor
    # rescan them (it searches each byte once; see bench/ for speed, tests never time).
    boundary = "0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"
    near_misses = (b"\r\n--" + boundary[:-1].encode() + b"?\r\n") * 25_000
    bodies = [(f"part {k:03d}\r\n--{boundary}X".encode() + near_misses)[:1 << 20]
              for k in range(200)]
    body = _body(*bodies, boundary=boundary)
    header = f"multipart/related; type=application/dicom; boundary={boundary}"
    for source in (body, (body[i:i + 65_537] for i in range(0, len(body), 65_537))):
        parts = parse_multipart_related(source, header)
        assert len(parts) == 200
        assert all(p.body == b for p, b in zip(parts, bodies, strict=True))


@pytest.mark.req("SRS-PKG-008", "SRS-DCMW-001")
def test_the_parser_holds_one_part_plus_one_chunk_never_the_body() -> None:
    """200 parts of a megabyte streamed in odd-sized chunks: the parser's buffer never holds
    more than the longest part (headers and body) plus one chunk plus one delimiter line.
    An accumulating parser would hold up to the whole 200 MB body."""
    boundary = "0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"
    near_misses = (b"\r\n--" + boundary[:-1].encode() + b"?\r\n") * 25_000
    header = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    chunk_size = 65_537  # not a divisor of anything: chunks end anywhere in a part

    def body_of(k: int) -> bytes:
        return (f"part {k:03d}\r\n--{boundary}X".encode() + near_misses)[:1 << 20]

    def stream() -> Iterator[bytes]:
        """The body in chunks of `chunk_size` (the last shorter), built one part at a time."""
        pieces = (header + body_of(k) + b"\r\n" for k in range(200))
        pending = b""
        for piece in chain(pieces, [f"--{boundary}--\r\n".encode()]):
            pending += piece
            view, start = memoryview(pending), 0
            while len(pending) - start >= chunk_size:
                yield bytes(view[start:start + chunk_size])
                start += chunk_size
            view.release()
            pending = pending[start:]
        yield pending

    parser = MultipartRelatedParser(
        f"multipart/related; type=application/dicom; boundary={boundary}")
    longest_part = len(header) - len(f"--{boundary}\r\n") + (1 << 20)  # headers, blank line, body
    delimiter_line = len(f"\r\n--{boundary}\r\n")
    bound = longest_part + chunk_size + delimiter_line
    peak, count = 0, 0
    for chunk in stream():
        # feed() appends the chunk to what it kept, then cuts the completed parts out: its
        # largest moment is what it kept plus this chunk.
        peak = max(peak, len(parser._buffer) + len(chunk))
        for part in parser.feed(chunk):
            assert part.index == count and part.body == body_of(count)
            count += 1  # the part is dropped here, as the STOW route hands it on
        held = len(parser._buffer)
        assert held <= bound
    assert [p.index for p in parser.close()] == [] and count == 200
    assert longest_part < peak <= bound  # it did hold a whole part at once, and no more

"""SOUP vigilance: the platform measured and assessed, one anomaly review record per item, the
support status, the SBOM's suppliers and hashes, and what a release record says is missing."""

import csv
import hashlib
import json
import platform as stdlib_platform
import shutil
import socket
import sqlite3
import ssl
import struct
import threading
from dataclasses import replace
from datetime import date
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml

from digital_contrast.qms.requirements import load_requirements
from digital_contrast.qms.soup import (
    Measured,
    check_soup,
    load_soup,
    measure_platform,
    runtime_closure,
    write_sbom,
    write_soup_list,
)
from digital_contrast.qms.soup import platform as platform_module
from digital_contrast.qms.soup.assessments import SOUP_FILE
from digital_contrast.qms.soup.hashes import dist_hashes, lock_hashes
from digital_contrast.qms.soup.platform import (
    _field_table,
    deb_packages,
    makefile_deb_packages,
    server,
)
from digital_contrast.qms.soup.reviews import REVIEWS_DIR, load_reviews
from digital_contrast.release.record import AUDIT_REQUIRED, release_notes, soup_vigilance

TODAY = date(2026, 12, 7)


@pytest.fixture(scope="module")
def closure():
    return runtime_closure()


@pytest.fixture(scope="module")
def known_items() -> set[str]:
    return set(load_requirements().software_items)


def _data() -> dict:
    return yaml.safe_load(SOUP_FILE.read_text(encoding="utf-8"))


def _as_recorded() -> dict[str, Measured]:
    """The platform as qms/soup.yaml records it, as if measured so (machine-independent)."""
    return {e["name"]: Measured(e["name"], e["kind"], e["version"], "test measurement")
            for e in _data()["platform"]}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "soup.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200), encoding="utf-8")
    return path


def _reviews(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    shutil.copytree(REVIEWS_DIR, folder)
    return folder


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _check(path: Path, closure, known_items, *, platform=None, reviews_dir=REVIEWS_DIR):
    soup, problems = load_soup(path)
    assert soup is not None and not problems, problems
    return check_soup(soup, closure, known_items, today=TODAY, reviews_dir=reviews_dir,
                      platform=_as_recorded() if platform is None else platform)


# --- measurement (SRS-SOUP-009) -------------------------------------------------------------

@pytest.mark.req("SRS-SOUP-009")
def test_the_platform_is_measured_on_this_machine() -> None:
    measured = measure_platform()
    assert measured["cpython"].version == stdlib_platform.python_version()
    assert measured["cpython"].kind == "interpreter"
    assert measured["sqlite"].version == sqlite3.sqlite_version
    assert measured["openssl"].version and measured["openssl"].version in ssl.OPENSSL_VERSION
    assert set(makefile_deb_packages()) | {"cpython", "postgresql-server", "redis-server",
                                           "rabbitmq-server"} <= set(measured)
    assert {"dicom3tools", "orthanc", "rsyslog", "chromium"} <= set(makefile_deb_packages())
    for component in measured.values():  # a version, or the reason there is none
        assert component.version or component.source.startswith("not measured: ")


@pytest.mark.req("SRS-SOUP-009")
def test_the_deb_package_list_follows_the_makefile(tmp_path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text("X := 1\nTEST_DEB_PACKAGES := dicom3tools chromium \\\n"
                        "\torthanc rsyslog\nREPORTS := var\n")
    assert makefile_deb_packages(makefile) == ["dicom3tools", "chromium", "orthanc", "rsyslog"]
    missing = deb_packages(["dc-no-such-package"])["dc-no-such-package"]
    assert missing.version is None and missing.source.startswith("not measured: ")


def _serve_once(reply: bytes) -> int:
    """A one-connection TCP server on 127.0.0.1 that reads a request and sends `reply`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        connection, _ = listener.accept()
        with connection, listener:
            connection.recv(64)
            connection.sendall(reply)

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


def _amqp_start(properties: dict[str, str]) -> bytes:
    table = b"".join(bytes([len(k)]) + k.encode() + b"S" + struct.pack(">I", len(v)) + v.encode()
                     for k, v in properties.items())
    nested = bytes([18]) + b"publisher_confirmst\x01"  # a nested table and a boolean: skipped
    table = (bytes([12]) + b"capabilities" + b"F" + struct.pack(">I", len(nested)) + nested
             + table)
    payload = (struct.pack(">HHBB", 10, 10, 0, 9) + struct.pack(">I", len(table)) + table
               + struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", 5) + b"en_US")
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


@pytest.mark.req("SRS-SOUP-009")
def test_servers_are_asked_for_their_version_or_recorded_as_not_measured(monkeypatch) -> None:
    port = _serve_once(_amqp_start({"product": "RabbitMQ", "version": "3.13.7"}))
    monkeypatch.setitem(platform_module.SERVERS, "rabbitmq-server",
                        (port, platform_module.rabbitmq_version))
    assert server("rabbitmq-server") == Measured(
        "rabbitmq-server", "server", "3.13.7", f"reported by the server at 127.0.0.1:{port}")
    body = b"# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\n"
    port = _serve_once(b"$%d\r\n%s\r\n" % (len(body), body))
    monkeypatch.setitem(platform_module.SERVERS, "redis-server",
                        (port, platform_module.redis_version))
    assert server("redis-server").version == "7.2.4"
    # A server that wants a password, and a port where nothing listens: not measured.
    port = _serve_once(b"-NOAUTH Authentication required.\r\n")
    monkeypatch.setitem(platform_module.SERVERS, "redis-server",
                        (port, platform_module.redis_version))
    refused = server("redis-server")
    assert refused.version is None and "NOAUTH" in refused.source
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed = probe.getsockname()[1]
    monkeypatch.setitem(platform_module.SERVERS, "postgresql-server",
                        (closed, platform_module.postgresql_version))
    absent = server("postgresql-server", timeout_s=1)
    assert absent.version is None
    assert absent.source.startswith(f"not measured: 127.0.0.1:{closed} (")
    assert _field_table(b"\x07versionS\x00\x00\x00\x031.0") == {"version": "1.0"}


# --- platform entries against the measurement (SRS-SOUP-010) -------------------------------

@pytest.mark.req("SRS-SOUP-010", "SRS-SOUP-011")
def test_platform_entries_are_checked_against_the_measurement(tmp_path, closure,
                                                              known_items) -> None:
    data = _data()
    extra = {**data["platform"][0], "name": "made-up-runtime"}
    data["platform"].append(extra)
    path = _write(tmp_path, data)
    measured = _as_recorded()
    measured["libfoo1"] = Measured("libfoo1", "deb", "1.0-1", "dpkg-query -W")
    # A test-only package updated by Debian, and the interpreter patched within its series,
    # stay within their assessments; a server of another release series does not.
    measured["orthanc"] = replace(measured["orthanc"], version="1.12.4+dfsg-1")
    measured["cpython"] = replace(measured["cpython"], version="3.11.99")
    measured["postgresql-server"] = replace(measured["postgresql-server"], version="16.4")
    measured["rabbitmq-server"] = Measured("rabbitmq-server", "server", None,
                                           "not measured: 127.0.0.1:5672 (refused)")
    problems = _check(path, closure, known_items, platform=measured)
    in_soup = {p.message: p.line for p in problems if p.file.endswith("soup.yaml")}
    assert in_soup == {
        "platform component libfoo1 1.0-1 (dpkg-query -W) has no SOUP assessment under "
        "platform:": _line_of(path, "platform:") + 1,  # where the list starts
        "platform component postgresql-server is 15.20 in the SOUP list but 16.4 was measured "
        "(test measurement), another release series": _line_of(path, "15.20"),
        "platform entry made-up-runtime is not a platform component of the device "
        "(interpreter, its OpenSSL and SQLite, OS, Makefile TEST_DEB_PACKAGES, servers)":
            _line_of(path, "name: made-up-runtime"),
        "made-up-runtime: no anomaly review record (qms/soup/reviews/made-up-runtime.yaml)":
            _line_of(path, "name: made-up-runtime"),
    }
    # The server of another series is not the version reviewed; the unmeasured broker is
    # compared with nothing (no problem for it).
    assert [p.message for p in problems if not p.file.endswith("soup.yaml")] == [
        "postgresql-server: the anomaly review is for version 15.20, but 16.4 is in use"]


@pytest.mark.req("SRS-SOUP-010", "SRS-SOUP-011", "SRS-SOUP-012")
def test_the_shipped_platform_section_is_complete(closure, known_items) -> None:
    soup, problems = load_soup()
    assert soup is not None and problems == []
    assert {i.name for _, i in soup.platform} == set(_as_recorded()) == set(
        makefile_deb_packages()) | {"cpython", "openssl", "sqlite", "debian", "postgresql-server",
                                   "redis-server", "rabbitmq-server"}
    assert check_soup(soup, closure, known_items, today=TODAY, platform=_as_recorded()) == []
    statuses = {i.name: i.support.status for _, i in soup.platform}
    assert statuses["cpython"] == "supported" and statuses["rabbitmq-server"] == "end-of-life"
    assert statuses["openssl"] == "end-of-life"  # upstream 3.0 LTS ended; Debian patches it


# --- review records (SRS-SOUP-011) ----------------------------------------------------------

@pytest.mark.req("SRS-SOUP-011")
def test_every_item_has_a_current_review_of_its_version(tmp_path, closure,
                                                        known_items) -> None:
    path = _write(tmp_path, _data())
    reviews = _reviews(tmp_path)
    (reviews / "typer.yaml").unlink()
    uvloop = reviews / "uvloop.yaml"
    uvloop.write_text(uvloop.read_text().replace("version: 0.23.0", "version: 0.22.1"))
    captum = reviews / "captum.yaml"
    captum.write_text(captum.read_text().replace("date: 2026-11-29", "date: 2026-12-24"))
    rich = yaml.safe_load((reviews / "rich.yaml").read_text())
    rich["sources_not_consulted"] = [s for s in rich["sources_not_consulted"]
                                     if "Textualize" not in s["source"]]
    (reviews / "rich.yaml").write_text(yaml.safe_dump(rich, sort_keys=False))
    orphan = yaml.safe_load((reviews / "numpy.yaml").read_text()) | {"item": "left-pad"}
    (reviews / "left-pad.yaml").write_text(yaml.safe_dump(orphan, sort_keys=False))
    (reviews / "Left_Pad.yaml").write_text(yaml.safe_dump(orphan, sort_keys=False))
    problems = {(Path(p.file).name, p.line, p.message)
                for p in _check(path, closure, known_items, reviews_dir=reviews)}
    _, review_problems = load_reviews(reviews)
    problems |= {(Path(p.file).name, p.line, p.message) for p in review_problems}
    assert problems == {
        ("soup.yaml", _line_of(path, "name: typer"),
         f"typer: no anomaly review record ({reviews / 'typer.yaml'})"),
        ("uvloop.yaml", _line_of(uvloop, "version: 0.22.1"),
         "uvloop: the anomaly review is for version 0.22.1, but 0.23.0 is in use"),
        ("captum.yaml", _line_of(captum, "date: 2026-12-24"),
         "captum: anomaly review dated 2026-12-24, in the future"),
        ("rich.yaml", _line_of(reviews / "rich.yaml", "sources_consulted:") + 1,
         "rich: the anomaly source https://github.com/Textualize/rich/issues is neither "
         "consulted nor listed as not consulted"),
        ("left-pad.yaml", _line_of(reviews / "left-pad.yaml", "item: left-pad"),
         "anomaly review of left-pad, which is not a SOUP item of qms/soup.yaml"),
        ("Left_Pad.yaml", _line_of(reviews / "Left_Pad.yaml", "item: left-pad"),
         "review record of left-pad must be named left-pad.yaml"),
    }


@pytest.mark.req("SRS-SOUP-011")
def test_shipped_reviews_are_honest_about_what_was_not_consulted() -> None:
    records, problems = load_reviews()
    assert problems == []
    soup, _ = load_soup()
    names = {i.name for _, i in soup.all_items()}
    assert {r.review.item for r in records.values()} == names
    for record in records.values():
        review = record.review
        # This machine reaches the package registry only: no review made here is complete.
        assert review.result == "incomplete" and review.sources_not_consulted
        assert any("osv.dev" in s.source for s in review.sources_not_consulted)
        assert review.reviewer_role and review.conclusion
    # No shared note (a YAML alias such as the former `*offline`) stands in for a review.
    assert not any(": *" in line for line in SOUP_FILE.read_text().splitlines())
    cpython = records["cpython"].review
    assert any("zipfile" in a.id for a in cpython.anomalies)


# --- support status (SRS-SOUP-012) ----------------------------------------------------------

@pytest.mark.req("SRS-SOUP-012")
def test_a_lapsed_support_end_is_reported(tmp_path, closure, known_items) -> None:
    data = _data()
    numpy = next(e for e in data["direct"] if e["name"] == "numpy")
    numpy["support"] = {"status": "supported", "until": date(2026, 12, 1),
                        "basis": "a declared end of support", "assessed": date(2026, 11, 1)}
    path = _write(tmp_path, data)
    problems = _check(path, closure, known_items)
    assert [(p.line, p.message) for p in problems] == [
        (_line_of(path, "until: 2026-12-01"),
         "numpy: support recorded as supported until 2026-12-01, which has passed")]
    del numpy["support"]["until"]
    _, problems = load_soup(_write(tmp_path, data))
    assert len(problems) == 1 and "needs `until`" in problems[0].message


# --- SBOM (SRS-SOUP-008) --------------------------------------------------------------------

def _properties(component: dict) -> dict[str, str]:
    return {p["name"].split(":", 1)[1]: p["value"] for p in component.get("properties", [])}


@pytest.mark.req("SRS-SOUP-008", "SRS-SOUP-005")
def test_sbom_components_carry_supplier_hashes_support_and_the_platform(tmp_path,
                                                                        closure) -> None:
    import jsonschema_rs
    from cyclonedx.schema import _res

    measured = _as_recorded()
    measured["rabbitmq-server"] = Measured("rabbitmq-server", "server", None,
                                           "not measured: 127.0.0.1:5672 (refused)")
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"numpy=={closure['numpy'].version} \\\n    --hash=sha256:{'a' * 64} \\\n"
                    f"    --hash=sha256:{'b' * 64}\nscipy=={closure['scipy'].version}\n")
    bom = json.loads(write_sbom(tmp_path / "bom.json", closure, platform=measured,
                                lock_files=(lock,)).read_text())
    by_name = {c["name"]: c for c in bom["components"]}
    numpy, scipy, starlette = by_name["numpy"], by_name["scipy"], by_name["starlette"]
    assert numpy["supplier"]["name"].startswith("NumPy developers")
    assert [h["content"] for h in numpy["hashes"]] == ["a" * 64, "b" * 64]
    assert _properties(numpy)["hash-source"].startswith("lock file --hash=sha256")
    record = distribution("scipy").read_text("RECORD")
    assert scipy["hashes"] == [{"alg": "SHA-256",
                                "content": hashlib.sha256(record.encode()).hexdigest()}]
    assert _properties(scipy)["hash-source"] == (
        "SHA-256 of the installed dist-info/RECORD (pinned without --hash in the lock files)")
    assert _properties(numpy)["support-status"] == "unknown"
    assert _properties(numpy)["anomaly-review"].endswith("(qms/soup/reviews/numpy.yaml)")
    # A transitive distribution: supplier from its metadata, the source named.
    assert starlette["supplier"]["name"] and _properties(starlette)["supplier-source"].startswith(
        "distribution metadata (")
    assert _properties(starlette)["soup-section"] == "transitive"
    # Platform components.
    cpython, debian = by_name["cpython"], by_name["debian"]
    assert cpython["type"] == "platform" and cpython["version"] == measured["cpython"].version
    assert _properties(cpython)["support-until"] == "2027-10-31"
    assert debian["type"] == "operating-system"
    orthanc = by_name["orthanc"]
    assert orthanc["purl"].startswith("pkg:deb/debian/orthanc@1.10.1") and \
        orthanc["purl"].endswith("?distro=debian-12")
    assert orthanc["scope"] == "excluded" and _properties(orthanc)["platform-use"] == "test"
    broker = by_name["rabbitmq-server"]
    assert "version" not in broker and broker["scope"] == "optional"
    assert _properties(broker)["version-source"].startswith("version not measured: ")
    assert _properties(broker)["support-status"] == "end-of-life"
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert cpython["bom-ref"] in graph["digital-contrast"]
    assert orthanc["bom-ref"] not in graph["digital-contrast"]  # tests only
    assert all(c.get("supplier") or _properties(c)["supplier-source"].startswith("not declared")
               for c in bom["components"])
    schemas = Path(_res.__file__).parent
    validator = jsonschema_rs.validator_for(
        json.loads((schemas / "bom-1.6.SNAPSHOT.schema.json").read_text()),
        retriever=lambda uri: json.loads((schemas / uri.rsplit("/", 1)[-1]).read_text()))
    assert validator.is_valid(bom), [str(e) for e in validator.iter_errors(bom)][:3]


@pytest.mark.req("SRS-SOUP-008")
def test_the_shipped_locks_carry_no_hashes_so_the_record_is_named(closure) -> None:
    locks = lock_hashes()
    assert locks and not any(locks.values())  # pins without --hash (make lock, pip freeze)
    found = dist_hashes("fastapi", closure["fastapi"].version, locks)
    assert len(found.sha256) == 1 and "dist-info/RECORD" in found.source
    assert "not in the lock files" in dist_hashes("torch", closure["torch"].version,
                                                  locks).source


# --- release record (SRS-SOUP-013) ----------------------------------------------------------

@pytest.mark.req("SRS-SOUP-013")
def test_release_notes_state_the_audit_that_must_be_attached() -> None:
    not_run = soup_vigilance(None, REVIEWS_DIR)
    assert not_run["vulnerability_audit"]["status"] == "not run"
    assert not_run["before_submission"][0] == AUDIT_REQUIRED
    assert {"numpy", "cpython", "chart.js"} <= set(not_run["anomaly_reviews_incomplete"])
    unavailable = soup_vigilance({"status": "unavailable", "checked_at": "2026-12-07T06:00:00",
                                  "tool": "pip-audit 2.10.1", "reason": "no answer",
                                  "not_audited": []}, REVIEWS_DIR)
    assert unavailable["vulnerability_audit"] == {
        "status": "unavailable", "checked_at": "2026-12-07T06:00:00",
        "tool": "pip-audit 2.10.1", "reason": "no answer"}
    assert AUDIT_REQUIRED in unavailable["before_submission"]
    completed = soup_vigilance({"status": "completed", "checked_at": "2026-12-07T06:00:00",
                                "vulnerabilities": []}, REVIEWS_DIR)
    assert AUDIT_REQUIRED not in completed["before_submission"]
    assert completed["vulnerability_audit"]["vulnerabilities"] == 0
    residual = {"conclusion": "not acceptable", "statement": "Computed from the risk file.",
                "reasons": []}
    notes = release_notes("1.0.0", {}, [], [], [], [], [], residual, unavailable)
    assert "## SOUP vulnerability audit and anomaly reviews" in notes
    assert "- Vulnerability audit: unavailable (2026-12-07T06:00:00) - no answer" in notes
    assert f"- **Before any submission:** {AUDIT_REQUIRED}" in notes


# --- the SOUP list (SRS-SOUP-014) -----------------------------------------------------------

@pytest.mark.req("SRS-SOUP-014")
def test_soup_list_shows_platform_support_hashes_and_reviews(tmp_path, closure) -> None:
    measured = _as_recorded()
    measured["redis-server"] = Measured("redis-server", "server", None,
                                        "not measured: 127.0.0.1:6379 (refused)")
    paths = write_soup_list(tmp_path, closure=closure, today=TODAY, platform=measured)
    markdown, html = (p.read_text(encoding="utf-8") for p in paths[:2])
    total = len(load_reviews()[0])
    for text in (markdown, html):
        assert "Runtime platform" in text and "Open findings" not in text
        assert f"Incomplete anomaly reviews ({total} of {total})" in text
        assert "supported until 2027-10-31" in text and "end-of-life" in text
        assert "Not consulted: https://osv.dev (OSV)" in text
        assert "SHA-256 of the installed dist-info/RECORD" in text
        assert "CVE-2024-0450" in text  # the interpreter's anomaly, from its review record
    assert "| redis-server | server | production, test | 7.0.15 | not measured |" in markdown
    assert "- Known-anomaly review `qms/soup/reviews/numpy.yaml`: 2026-11-29, version 2.4.6" \
        in markdown
    rows = {r["name"]: r for r in csv.DictReader(paths[3].open(encoding="utf-8"))}
    assert rows["cpython"]["section"] == "platform" and rows["cpython"]["kind"] == "interpreter"
    assert rows["numpy"]["support_status"] == "unknown"
    assert rows["numpy"]["review_result"] == "incomplete"
    assert rows["numpy"]["review_file"] == "qms/soup/reviews/numpy.yaml"
    assert len(rows["starlette"]["sha256"]) == 64 and "RECORD" in rows["starlette"]["hash_source"]

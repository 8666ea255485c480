"""Records on disk through the API (/v1/records): validation records of runs, filed candidates
and released models, QMS documents and release records; media types, roles, folders that do
not exist, names that would lead outside a record folder, and release files that changed."""

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digital_contrast.api import records_files as files
from digital_contrast.api.records_files import RecordFileError, RecordRoots
from digital_contrast.api.routers.records import record_roots
from digital_contrast.config import REPO_ROOT
from digital_contrast.model.validation_record import Criterion, ValidationRecord
from digital_contrast.store import Role
from tests.support.service import make_settings, running_service
from tests.support.signing import site_signer

RUN = "aaa-cta-20250102T030405Z-0123456789ab"
RUN_NO_RECORD = "aaa-cta-20250103T000000Z-aaaaaaaaaaaa"
RUN_BROKEN = "aaa-cta-20250104T000000Z-bbbbbbbbbbbb"
EVIDENCE = "procedural digital phantom only; not clinically validated"
SECRET = b"SECRET-OUTSIDE-THE-RECORDS"
PDF = b"%PDF-1.4\n% validation report\n%%EOF\n"
WHEEL = "digital_contrast-1.0.0-py3-none-any.whl"


def _record(version: str, passed: bool, day: int) -> ValidationRecord:
    return ValidationRecord(
        bundle_sha256=hashlib.sha256(version.encode()).hexdigest(), use_case="aaa-cta",
        model_name="aaa-cta", model_version=version,
        protocol="validation/protocols/aaa-cta.yaml", protocol_sha256="e" * 64,
        dataset="phantom seeds 9000-9023 (held out)",
        criteria=[Criterion(metric="lumen_dice", op=">=", threshold=0.9,
                            value=0.95 if passed else 0.8)],
        evidence=EVIDENCE, created=datetime(2025, 1, day, tzinfo=UTC))


def _write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def _release(folder: Path, version: str, contents: dict[str, bytes], **extra: object) -> None:
    for name, content in contents.items():
        _write(folder / name, content)
    manifest = {"product": "Digital Contrast", "version": version, "package_version": version,
                "git_commit": "0" * 40, "built_at": "2025-01-05T00:00:00+00:00",
                "build_environment": {"python": "3.11"}, "models": [],
                "counts": {"requirements": 3}, "known_anomalies": ["ANOM-001"],
                "evidence_statement": EVIDENCE,
                "files": {name: hashlib.sha256(content).hexdigest()
                          for name, content in contents.items()}, **extra}
    _write(folder / "manifest.json", json.dumps(manifest, indent=2))


RELEASE_FILES = {"RELEASE_NOTES.md": b"# Digital Contrast 1.0.0\n",
                 "trace/trace.html": b"<html><body>trace</body></html>\n",
                 "trace/trace.json": b'{"requirements": []}\n',
                 "soup/soup_list.csv": b"name,version\nnumpy,2.0\n",
                 WHEEL: b"PK\x03\x04 a wheel"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> RecordRoots:
    """Records of every kind under one folder, with the traps a request must not reach."""
    root = tmp_path_factory.mktemp("records")
    build, releases, filed = root / "build", root / "releases", root / "filed"
    secret = _write(root / "outside" / "secret.json", SECRET)
    _write(releases / "secret.txt", SECRET)  # beside the release folders, not in one

    run = build / "validation" / RUN
    _record("2.0.0-rc1", True, 3).save_signed(run / "validation_record.json", site_signer())
    _write(run / "run.json", json.dumps({"protocol": "aaa-cta", "cases": 2}))
    _write(run / "report.html", "<html><body>validation report</body></html>")
    _write(run / "report.pdf", PDF)
    _write(run / "cases.csv", "case,lumen_dice\n9000,0.95\n")
    _write(run / "notes.txt", "not a record file")
    _write(build / "validation" / RUN_NO_RECORD / "run.json", "{}")  # still being written
    _write(build / "validation" / RUN_BROKEN / "validation_record.json", "{not json")
    (build / "validation" / RUN_BROKEN / "report.html").symlink_to(secret)
    _record("9.9.9", True, 9).save_signed(build / "validation" / ".incomplete-x" / RUN /
                                          "validation_record.json", site_signer())
    _record("9.9.8", True, 9).save_signed(build / "validation" / "not-a-run" /
                                          "validation_record.json", site_signer())

    candidate = filed / "models" / "aaa-cta" / "0.9.0"
    _record("0.9.0", False, 1).save_signed(candidate / "validation_record.json", site_signer())
    _write(candidate / "MODEL_CARD.md", "# Model card aaa-cta 0.9.0\n")
    _write(candidate / "quality_report.json", '{"lumen_dice": 0.8}')
    _write(candidate / "bundle" / "weights.pt", b"weights")
    _write(filed / "models" / "aaa-cta" / "0.8.0" / "validation_record.json", "[]")
    released = releases / "models" / "aaa-cta" / "1.0.0"
    _record("1.0.0", True, 2).save_signed(released / "validation_record.json", site_signer())
    _write(released / "MODEL_CARD.md", "# Model card aaa-cta 1.0.0\n")

    qms = build / "qms"
    for name, content in (("trace.json", '{"requirements": []}'), ("trace.html", "<html/>"),
                          ("trace.md", "# Trace\n"), ("trace.csv", "id,title\n"),
                          ("sbom.cdx.json", '{"bomFormat": "CycloneDX"}'),
                          (".hidden.json", "{}"), ("sub/inner.md", "# inner")):
        _write(qms / name, content)
    (qms / "link.json").symlink_to(secret)

    _release(releases / "1.0.0", "1.0.0", RELEASE_FILES)
    _write(releases / "1.0.0" / "unlisted.txt", "not in the manifest")
    tampered = releases / "1.0.1"
    (tampered / "link.txt").parent.mkdir(parents=True)
    (tampered / "link.txt").symlink_to(secret)
    _release(tampered, "1.0.1", RELEASE_FILES | {"gone.md": b"removed later"})
    manifest = json.loads((tampered / "manifest.json").read_text())
    # A manifest edited to point out of its folder, with the right hashes: still refused.
    manifest["files"] |= {"../secret.txt": hashlib.sha256(SECRET).hexdigest(),
                          "link.txt": hashlib.sha256(SECRET).hexdigest()}
    _write(tampered / "manifest.json", json.dumps(manifest))
    _write(tampered / "RELEASE_NOTES.md", b"# Digital Contrast 1.0.1 (edited after release)\n")
    (tampered / "gone.md").unlink()
    _release(releases / ".incomplete-abc" / "release", "1.1.0", RELEASE_FILES)
    _write(releases / "0.9.0" / "manifest.json", "{broken")
    return RecordRoots(build_dir=build, releases_dir=releases, filed_dir=filed)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, empty_registry_db: Path,
            roots: RecordRoots):
    settings = make_settings(tmp_path_factory.mktemp("records-api"), empty_registry_db,
                             build_dir=roots.build_dir)
    with running_service(settings) as running:
        running.app.dependency_overrides[record_roots] = lambda: roots
        yield running


def _get(service, url: str, role: Role | None = Role.REGULATORY):
    return service.client.get(url, headers=service.headers(role) if role else {})


def _problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert SECRET.decode() not in response.text and "Traceback" not in response.text


@pytest.mark.req("SRS-API-008")
def test_validation_records_are_listed_from_runs_filed_and_released(service) -> None:
    response = _get(service, "/v1/records/validation")
    assert response.status_code == 200
    listed = response.json()
    assert [r["id"] for r in listed] == [f"run:{RUN}", "released:aaa-cta:1.0.0",
                                         "filed:aaa-cta:0.9.0"]  # newest first
    run, released, filed = listed
    assert (run["source"], released["source"], filed["source"]) == ("run", "released", "filed")
    assert run["model_version"] == "2.0.0-rc1" and run["use_case"] == "aaa-cta"
    assert run["bundle_sha256"] == hashlib.sha256(b"2.0.0-rc1").hexdigest()
    assert run["protocol"] == "validation/protocols/aaa-cta.yaml"
    assert run["protocol_sha256"] == "e" * 64
    assert run["created"].startswith("2025-01-03T00:00:00")
    assert (run["passed"], released["passed"], filed["passed"]) == (True, True, False)
    assert filed["criteria"] == [{"metric": "lumen_dice", "op": ">=", "threshold": 0.9,
                                  "value": 0.8, "passed": False}]
    assert all(r["evidence"] == EVIDENCE for r in listed)  # phantom-only, said every time
    assert [f["name"] for f in run["files"]] == ["validation_record.json", "run.json",
                                                 "report.html", "report.pdf", "cases.csv"]
    assert [f["name"] for f in filed["files"]] == ["validation_record.json", "MODEL_CARD.md",
                                                   "quality_report.json"]
    assert [f["name"] for f in released["files"]] == ["validation_record.json",
                                                      "MODEL_CARD.md"]
    pdf = next(f for f in run["files"] if f["name"] == "report.pdf")
    assert pdf == {"name": "report.pdf", "media_type": "application/pdf", "size": len(PDF),
                   "href": f"/v1/records/validation/run:{RUN}/report.pdf"}


@pytest.mark.req("SRS-API-008")
def test_the_repository_filed_reference_candidate_is_listed_by_default(tmp_path: Path) -> None:
    defaults = RecordRoots(build_dir=tmp_path / "none", releases_dir=tmp_path / "none")
    assert defaults.filed_dir == REPO_ROOT / "validation" / "reports"
    filed = [r for r in files.list_validation_records(defaults) if r.source == "filed"]
    assert filed and all("phantom" in r.evidence for r in filed)


@pytest.mark.req("SRS-API-008")
@pytest.mark.parametrize(("record_id", "name", "media_type"), [
    (f"run:{RUN}", "validation_record.json", "application/json"),
    (f"run:{RUN}", "run.json", "application/json"),
    (f"run:{RUN}", "report.html", "text/html; charset=utf-8"),
    (f"run:{RUN}", "report.pdf", "application/pdf"),
    (f"run:{RUN}", "cases.csv", "text/csv; charset=utf-8"),
    ("filed:aaa-cta:0.9.0", "MODEL_CARD.md", "text/markdown; charset=utf-8"),
    ("filed:aaa-cta:0.9.0", "quality_report.json", "application/json"),
    ("released:aaa-cta:1.0.0", "validation_record.json", "application/json"),
])
def test_validation_record_files_are_served_with_their_media_type(
        service, roots: RecordRoots, record_id: str, name: str, media_type: str) -> None:
    source, _, rest = record_id.partition(":")
    folder = (roots.runs / rest if source == "run" else
              roots.models(files.Source(source)) / rest.replace(":", "/"))
    response = _get(service, f"/v1/records/validation/{record_id}/{name}", Role.ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.content == (folder / name).read_bytes()


@pytest.mark.req("SRS-API-008")
@pytest.mark.parametrize("url", [
    f"/v1/records/validation/run:{RUN}/notes.txt",  # in the folder, but not a record file
    f"/v1/records/validation/run:{RUN}/MODEL_CARD.md",
    f"/v1/records/validation/run:{RUN_NO_RECORD}/report.pdf",
    "/v1/records/validation/filed:aaa-cta:0.9.0/weights.pt",
    "/v1/records/validation/filed:aaa-cta:0.9.0/report.pdf",
    "/v1/records/validation/released:aaa-cta:9.9.9/validation_record.json",
    "/v1/records/validation/run:aaa-cta-20990101T000000Z-ffffffffffff/run.json",
    "/v1/records/validation/unknown:aaa-cta:1.0.0/validation_record.json",
    "/v1/records/validation/not-a-run/validation_record.json",
])
def test_unknown_validation_records_and_files_are_not_found(service, url: str) -> None:
    _problem(_get(service, url), 404, "RECORD_NOT_FOUND")


@pytest.mark.req("SRS-API-009")
def test_qms_documents_are_listed_with_size_hash_and_time(service, roots: RecordRoots) -> None:
    response = _get(service, "/v1/records/qms")
    assert response.status_code == 200
    listed = response.json()
    # Hidden files, sub-folders and a symlink leading out of the folder are not documents.
    assert [d["name"] for d in listed] == ["sbom.cdx.json", "trace.csv", "trace.html",
                                          "trace.json", "trace.md"]
    for document in listed:
        path = roots.qms / document["name"]
        assert document["size"] == path.stat().st_size
        assert document["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert datetime.fromisoformat(document["modified"]).timestamp() == \
            pytest.approx(path.stat().st_mtime)
        assert document["href"] == f"/v1/records/qms/{document['name']}"
    assert {d["name"]: d["media_type"] for d in listed}["trace.md"] == "text/markdown"


@pytest.mark.req("SRS-API-009")
@pytest.mark.parametrize(("name", "media_type"), [
    ("trace.json", "application/json"), ("trace.html", "text/html; charset=utf-8"),
    ("trace.md", "text/markdown; charset=utf-8"), ("trace.csv", "text/csv; charset=utf-8"),
    ("sbom.cdx.json", "application/json")])
def test_qms_documents_are_served(service, roots: RecordRoots, name: str,
                                  media_type: str) -> None:
    response = _get(service, f"/v1/records/qms/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (roots.qms / name).read_bytes()


@pytest.mark.req("SRS-API-009")
def test_release_records_are_listed_newest_first_and_complete_only(service) -> None:
    response = _get(service, "/v1/records/releases")
    assert response.status_code == 200
    listed = response.json()
    # .incomplete-* is a build in progress, models/ holds reference models, and 0.9.0's
    # manifest cannot be read: none is a release record to list.
    assert [r["version"] for r in listed] == ["1.0.1", "1.0.0"]
    latest = listed[1]
    assert latest["file_count"] == len(RELEASE_FILES)
    assert latest["manifest_href"] == "/v1/records/releases/1.0.0"
    assert (latest["git_commit"], latest["known_anomalies"]) == ("0" * 40, ["ANOM-001"])
    assert latest["evidence_statement"] == EVIDENCE


@pytest.mark.req("SRS-API-009")
def test_a_release_manifest_is_given_whole(service, roots: RecordRoots) -> None:
    response = _get(service, "/v1/records/releases/1.0.0")
    assert response.status_code == 200
    assert response.json() == json.loads((roots.releases_dir / "1.0.0" /
                                          "manifest.json").read_text())


@pytest.mark.req("SRS-API-009")
def test_an_unreadable_manifest_is_refused(service) -> None:
    _problem(_get(service, "/v1/records/releases/0.9.0"), 409, "RECORD_UNREADABLE")
    _problem(_get(service, "/v1/records/releases/0.9.0/files/RELEASE_NOTES.md"), 409,
             "RECORD_UNREADABLE")


@pytest.mark.req("SRS-API-009")
@pytest.mark.parametrize(("path", "media_type"), [
    ("RELEASE_NOTES.md", "text/markdown; charset=utf-8"),
    ("trace/trace.html", "text/html; charset=utf-8"),
    ("trace/trace.json", "application/json"),
    ("soup/soup_list.csv", "text/csv; charset=utf-8"),
    (WHEEL, "application/zip")])
def test_release_files_listed_and_unchanged_are_served(service, path: str,
                                                       media_type: str) -> None:
    response = _get(service, f"/v1/records/releases/1.0.0/files/{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["content-length"] == str(len(RELEASE_FILES[path]))
    assert response.headers["content-disposition"] == \
        f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
    assert response.content == RELEASE_FILES[path]


@pytest.mark.req("SRS-API-009")
def test_a_changed_or_missing_release_file_is_refused_never_served(service) -> None:
    changed = _get(service, "/v1/records/releases/1.0.1/files/RELEASE_NOTES.md")
    _problem(changed, 409, "RECORD_TAMPERED")
    assert b"edited after release" not in changed.content
    _problem(_get(service, "/v1/records/releases/1.0.1/files/gone.md"), 409, "RECORD_TAMPERED")
    # The record's other files are still served: each is checked on its own.
    unchanged = _get(service, "/v1/records/releases/1.0.1/files/trace/trace.json")
    assert unchanged.status_code == 200 and unchanged.content == RELEASE_FILES["trace/trace.json"]


@pytest.mark.req("SRS-API-009")
@pytest.mark.parametrize("url", [
    "/v1/records/releases/1.0.0/files/unlisted.txt",  # present, but not in the manifest
    "/v1/records/releases/1.0.0/files/manifest.json",
    "/v1/records/releases/1.0.0/files/trace",
    "/v1/records/releases/2.0.0",
    "/v1/records/releases/2.0.0/files/RELEASE_NOTES.md",
    "/v1/records/releases/models",
    "/v1/records/releases/.incomplete-abc",
    "/v1/records/releases/1.0",  # not the folder's normal form
])
def test_files_not_in_a_manifest_and_unknown_releases_are_not_found(service, url: str) -> None:
    _problem(_get(service, url), 404, "RECORD_NOT_FOUND")


TRAVERSALS = [
    "/v1/records/qms/link.json",  # a symlink out of the folder
    "/v1/records/qms/.hidden.json",
    "/v1/records/qms/%2e%2e",
    "/v1/records/qms/..%2Foutside%2Fsecret.json",
    "/v1/records/qms/%2Fetc%2Fpasswd",
    "/v1/records/qms/sub%2Finner.md",
    f"/v1/records/validation/run:{RUN_BROKEN}/report.html",  # a symlink out
    f"/v1/records/validation/run:{RUN}/..%2F..%2F..%2Foutside%2Fsecret.json",
    "/v1/records/validation/run:..%2F..%2Foutside/secret.json",
    "/v1/records/validation/filed:aaa-cta:..%2F..%2F..%2Foutside/validation_record.json",
    "/v1/records/validation/filed:..:0.9.0/validation_record.json",
    "/v1/records/validation/filed:aaa-cta:0.9.0%2Fbundle/weights.pt",
    "/v1/records/validation/%2Fetc/passwd",
    "/v1/records/releases/..",
    "/v1/records/releases/%2e%2e/files/secret.txt",
    "/v1/records/releases/..%2Foutside",
    "/v1/records/releases/1.0.0/files/%2e%2e/secret.txt",
    "/v1/records/releases/1.0.0/files/%2e%2e%2F%2e%2e%2Foutside%2Fsecret.json",
    "/v1/records/releases/1.0.0/files//etc/passwd",
    "/v1/records/releases/1.0.0/files/%2Fetc%2Fpasswd",
    "/v1/records/releases/1.0.1/files/%2e%2e/secret.txt",  # listed in an edited manifest
    "/v1/records/releases/1.0.1/files/link.txt",  # listed, hash right, a symlink out
]


@pytest.mark.req("SRS-API-010")
@pytest.mark.parametrize("url", TRAVERSALS)
def test_names_leading_outside_a_record_folder_are_not_found(service, url: str) -> None:
    response = _get(service, url)
    assert response.status_code == 404, (url, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("RECORD_NOT_FOUND", "NOT_FOUND")
    assert SECRET.decode() not in response.text and "Traceback" not in response.text


@pytest.mark.req("SRS-API-010")
@pytest.mark.parametrize(("call", "args"), [
    (files.qms_file, ("..",)), (files.qms_file, ("../outside/secret.json",)),
    (files.qms_file, ("/etc/passwd",)), (files.qms_file, ("link.json",)),
    (files.qms_file, ("trace.json\n",)), (files.qms_file, ("trace\0.json",)),
    (files.validation_file, ("run:../../outside", "secret.json")),
    (files.validation_file, (f"run:{RUN}", "../../../outside/secret.json")),
    (files.validation_file, (f"run:{RUN_BROKEN}", "report.html")),
    (files.validation_file, ("filed:aaa-cta:../../../outside", "validation_record.json")),
    (files.validation_file, ("released:aaa-cta:1.0.0:..", "validation_record.json")),
    (files.open_release_file, ("1.0.0", "../secret.txt")),
    (files.open_release_file, ("../outside", "secret.json")),
    (files.open_release_file, ("1.0.0", "/etc/passwd")),
    (files.open_release_file, ("1.0.1", "../secret.txt")),
    (files.open_release_file, ("1.0.1", "link.txt")),
])
def test_record_lookups_never_leave_their_folder(roots: RecordRoots, call, args) -> None:
    """Below HTTP (no client normalising the URL first): the lookups themselves refuse."""
    with pytest.raises(RecordFileError) as refused:
        call(roots, *args)
    assert refused.value.code == "RECORD_NOT_FOUND"


@pytest.mark.req("SRS-API-010")
def test_records_folders_that_do_not_exist_give_empty_lists(service, tmp_path: Path) -> None:
    missing = RecordRoots(build_dir=tmp_path / "no-build", releases_dir=tmp_path / "no-rel",
                          filed_dir=tmp_path / "no-filed")
    overrides = service.app.dependency_overrides
    previous = overrides[record_roots]
    overrides[record_roots] = lambda: missing
    try:
        for kind in ("validation", "qms", "releases"):
            response = _get(service, f"/v1/records/{kind}")
            assert (response.status_code, response.json()) == (200, [])
        _problem(_get(service, "/v1/records/qms/trace.html"), 404, "RECORD_NOT_FOUND")
        _problem(_get(service, "/v1/records/releases/1.0.0"), 404, "RECORD_NOT_FOUND")
    finally:
        overrides[record_roots] = previous
    assert not os.path.exists(missing.build_dir)  # reading never creates the folders


ROLE_URLS = ["/v1/records/validation", f"/v1/records/validation/run:{RUN}/report.pdf",
             "/v1/records/qms", "/v1/records/qms/trace.html", "/v1/records/releases",
             "/v1/records/releases/1.0.0", "/v1/records/releases/1.0.0/files/trace/trace.html"]


@pytest.mark.req("SRS-API-008", "SRS-API-009", "SRS-API-001")
@pytest.mark.parametrize("url", ROLE_URLS)
def test_only_regulatory_and_admin_read_records(service, url: str) -> None:
    _problem(_get(service, url, None), 401, "AUTH_MISSING")
    for role in (Role.CLINICIAN, Role.SUSTAINABILITY):
        _problem(_get(service, url, role), 403, "AUTH_FORBIDDEN")
    for role in (Role.REGULATORY, Role.ADMIN):
        assert _get(service, url, role).status_code == 200, (url, role)


@pytest.mark.req("SRS-API-008", "SRS-API-009")
def test_openapi_documents_the_record_routes_with_models_and_examples(service) -> None:
    schema = service.client.get("/openapi.json").json()
    paths = schema["paths"]
    listed = paths["/v1/records/validation"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["schema"]["items"]["$ref"].endswith(
        "/ValidationRecordView")
    assert "409" in paths["/v1/records/releases/{version}/files/{path}"]["get"]["responses"]
    for name in ("ValidationRecordView", "QmsDocument", "ReleaseSummary", "ReleaseManifest"):
        assert schema["components"]["schemas"][name]["examples"], name

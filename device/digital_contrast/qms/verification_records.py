"""Signed records of the verifications that are not tests (IEC 62304 5.1.6, 5.7.5).

A requirement verified by inspection, analysis or demonstration has no test outcome to stand
for it, so it stands on a record: `qms/verification/<requirement>.json`, a document signed
(Ed25519, qms/../keys) for the purpose `verification-record` by a key whose public half is
committed under `releases/keys/`. It names the method, who performed it and when, the procedure,
each file examined with its SHA-256 (a later change of that file makes the record stale), the
result and the findings. `qms verify-record` writes one; `qms check` refuses a requirement of
that kind without a valid, current, passing record, and a record no requirement needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError

from digital_contrast.frozen_schema import FrozenSchema
from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.signing import Signer
from digital_contrast.qms.requirements import Records, RequirementId, Text
from digital_contrast.qms.trust import repository_keys
from digital_contrast.qms.yaml_records import Problem

PURPOSE = "verification-record"
FOLDER = Path("qms") / "verification"
RepoPath = Annotated[str, StringConstraints(pattern=r"^[\w.-][\w./-]*$")]


class ExaminedFile(FrozenSchema):
    path: RepoPath  # from the repository root
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class VerificationRecord(FrozenSchema):
    requirement: RequirementId
    method: Literal["inspection", "analysis", "demonstration"]
    performed_on: dt.date
    performed_by: Text  # role and name
    procedure: Text
    examined: list[ExaminedFile] = Field(min_length=1)
    result: Literal["pass", "fail"]
    findings: Text


def record_path(repo: Path, requirement: str) -> Path:
    return repo / FOLDER / f"{requirement}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_record(repo: Path, signer: Signer, *, requirement: str, method: str,
                 performed_by: str, procedure: str, examined: list[Path], result: str,
                 findings: str, today: dt.date | None = None) -> Path:
    """Sign and write the record of one verification; the examined files are hashed now."""
    files = []
    for path in examined:
        resolved = (repo / path).resolve()
        if not resolved.is_file() or not resolved.is_relative_to(repo.resolve()):
            raise ValueError(f"{path}: not a file of the repository")
        files.append({"path": resolved.relative_to(repo.resolve()).as_posix(),
                      "sha256": _sha256(resolved)})
    record = VerificationRecord.model_validate({
        "requirement": requirement, "method": method,
        "performed_on": today or dt.date.today(), "performed_by": performed_by,
        "procedure": procedure, "examined": files, "result": result, "findings": findings})
    target = record_path(repo, requirement)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(signer.sign_document(PURPOSE, record.model_dump(mode="json")))
    return target


def _record_problems(repo: Path, rid: str, method: str) -> list[str]:
    path = record_path(repo, rid)
    if not path.is_file():
        return [f"{rid} is verified by {method} but has no signed verification record "
                f"({FOLDER / (rid + '.json')}; `digital-contrast qms verify-record`)"]
    try:
        payload, _ = repository_keys(repo).open_document(path.read_bytes(), PURPOSE,
                                                         f"{FOLDER / path.name}")
        record = VerificationRecord.model_validate(payload)
    except KeysError as exc:
        return [f"{rid}: verification record refused ({exc.code}): {exc.detail}"]
    except ValidationError as exc:
        return [f"{rid}: verification record is not valid: {exc.errors()[0]['msg']}"]
    problems = []
    if record.requirement != rid or record.method != method:
        problems.append(f"{rid}: the verification record is for {record.requirement} by "
                        f"{record.method}, not {rid} by {method}")
    if record.result != "pass":
        problems.append(f"{rid}: its {method} did not pass: {record.findings}")
    for examined in record.examined:
        target = repo / examined.path
        if not target.is_file():
            problems.append(f"{rid}: {examined.path}, examined by its {method}, no longer "
                            "exists")
        elif _sha256(target) != examined.sha256:
            problems.append(f"{rid}: {examined.path} changed after its {method} "
                            f"({record.performed_on}): the record is stale, verify again")
    return problems


def check_verification_records(records: Records, repo: Path) -> list[Problem]:
    """Every non-test verification stands on a valid, current, passing signed record, and every
    record stands for such a verification."""
    problems = []
    for req in records.requirements.values():
        if req.verification != "test":
            problems += [records.requirement_problem(req.id, ("verification",), message)
                         for message in _record_problems(repo, req.id,
                                                         str(req.verification))]
    folder = repo / FOLDER
    needed = {r.id for r in records.requirements.values() if r.verification != "test"}
    problems += [Problem(str(FOLDER / path.name), None, f"{path.stem} needs no verification "
                         "record (not a requirement verified by inspection, analysis or "
                         "demonstration)")
                 for path in sorted(folder.glob("*.json")) if path.stem not in needed]
    return problems

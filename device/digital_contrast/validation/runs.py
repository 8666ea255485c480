"""Completed validation runs under a build folder, and the current one of each protocol."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from digital_contrast.errors import DigitalContrastError
from digital_contrast.keys.signing import trusted_keys
from digital_contrast.model.validation_record import SignedRecord, ValidationRecord
from digital_contrast.validation.protocol_run import RECORD


@dataclass(frozen=True)
class CompletedRun:
    folder: Path
    record: ValidationRecord

    @property
    def run_id(self) -> str:
        return self.folder.name


def completed_runs(root: Path) -> list[CompletedRun]:
    """Every complete run (a visible folder with a record signed by a trusted key), oldest
    first: run ids
    start with the protocol id and sort by their UTC time within it."""
    runs, trust = [], trusted_keys()
    for folder in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        if folder.name.startswith(".") or not (folder / RECORD).is_file():
            continue
        try:
            signed = SignedRecord.read(folder / RECORD, trust)
        except (ValueError, DigitalContrastError):
            continue  # not a record signed by a key this site trusts: never evidence
        runs.append(CompletedRun(folder, signed.record))
    return sorted(runs, key=lambda run: run.record.created)


def current_run(root: Path, protocol: Path) -> CompletedRun | None:
    """The latest complete run of the protocol file as it is now (same SHA-256): a run of an
    earlier version of the protocol is not evidence for this one."""
    sha = hashlib.sha256(Path(protocol).read_bytes()).hexdigest()
    matching = [run for run in completed_runs(root) if run.record.protocol_sha256 == sha]
    return matching[-1] if matching else None

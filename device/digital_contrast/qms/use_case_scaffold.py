"""`usecase new`: the records a new use case needs, copied from an existing one, with every
statement that must be written for the new one marked as a gap.

The gaps are the placeholder marker `qms check` refuses (qms/placeholders.py), so a scaffolded
use case cannot pass the check, nor be released, until a person has written its intended use,
exclusions, notice, evidence, protocol rationale, risk review and instructions for use. Nothing
is written when any target already exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from digital_contrast.errors import DigitalContrastError
from digital_contrast.qms.use_cases import IFU, RISK_REVIEWS
from digital_contrast.usecases import Phase, load_use_case

DEFINITIONS = Path("device") / "digital_contrast" / "usecases" / "definitions"
PROTOCOLS = Path("validation") / "protocols"
TRAINING = Path("training")
DEVICE = Path("qms") / "device.yaml"
GAP = "TBD"  # the marker qms check refuses: what the scaffold cannot know
_ID = re.compile(r"^[a-z][a-z0-9-]{2,40}$")

CHECKLIST = (
    "write the intended use, users, exclusions, notice and evidence in the definition",
    "write the phantom extension (device/digital_contrast/phantom/extensions/, as "
    "abdomen_pv.py) and name it in the training config",
    "choose the protocol's dataset, strata and criteria; run the floor study; write the "
    "rationale; commit the protocol before any model is evaluated",
    "train (model train --use-case ID --config reference --out DIR), calibrate, validate",
    "file the candidate or release the model (its model card)",
    "write the risk review and any new risks in risk/risks/",
    "write the use case's section of the instructions for use",
    "run qms check: it reports every record still missing or marked",
)


class ScaffoldError(DigitalContrastError):
    """USECASE_EXISTS (a target file or the id already exists), USECASE_INVALID (an id or
    title the catalogue would refuse)."""


@dataclass(frozen=True)
class Scaffold:
    use_case: str
    written: list[Path]  # relative to the repository
    changed: list[Path]


def _definition(base: dict, use_case: str, title: str, phase: Phase) -> dict:
    out = dict(base)
    out.update(id=use_case, title=title, model_name=use_case, target_phase=phase.value,
               validation_protocol=str(PROTOCOLS / f"{use_case}.yaml"),
               intended_use=f"{GAP}: what {title} is for, for whom, as an adjunct to what",
               exclusions=[f"{GAP}: the conditions this synthesis cannot show"],
               notice=f"{GAP}: what the output must not be used for",
               evidence="No model has been trained or validated for this use case.")
    return out


def _protocol(base: dict, use_case: str) -> dict:
    out = {key: base[key] for key in ("dataset", "reference", "acceptance") if key in base}
    return {"id": use_case, "version": 1, "use_case": use_case,
            "evidence": "procedural digital phantom only; not clinically validated", **out,
            "revisions": [{"version": 1, "change": f"{GAP}: the initial acceptance criteria",
                           "rationale": f"{GAP}: the floor study, decided before any model "
                                        "was evaluated"}]}


def _review(base: dict, use_case: str) -> dict:
    system = [r for r in base["risks"] if r not in base.get("added", [])]
    return {"use_case": use_case, "reviewed": GAP, "reviewed_by": GAP, "risks": system,
            "added": [], "conclusion": f"{GAP}: which risks this use case adds and why"}


def _ifu_section(use_case: str, title: str) -> str:
    return (f"\n## {use_case}: {title}\n\n**Intended use.** {GAP}\n\n**Not for:** {GAP}\n\n"
            f"**Notice in every output:** {GAP}\n\n**Accepted input:** {GAP}\n\n"
            f"**How to read it.** {GAP}\n\n**Residual risks disclosed** "
            f"({RISK_REVIEWS.as_posix()}/{use_case}.yaml): {GAP}\n")


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=96)


def scaffold_use_case(repo: Path, use_case: str, title: str, phase: Phase,
                      base: str = "abdomen-pv") -> Scaffold:
    """Write the new use case's definition, protocol, training config and risk review, add its
    section to the instructions for use and its id to the device record."""
    if not _ID.match(use_case):
        raise ScaffoldError("USECASE_INVALID", f"use case id {use_case!r} must be lower-case "
                            "letters, digits and hyphens, 3-41 characters, starting with a "
                            "letter")
    if not title.strip():
        raise ScaffoldError("USECASE_INVALID", "the title must not be empty")
    load_use_case(base)  # USECASE_UNKNOWN for a base that does not exist
    targets = {DEFINITIONS / f"{use_case}.yaml": None, PROTOCOLS / f"{use_case}.yaml": None,
               TRAINING / use_case / "training.yaml": None,
               RISK_REVIEWS / f"{use_case}.yaml": None}
    existing = [str(t) for t in targets if (repo / t).exists()]
    ifu, device = (repo / IFU).read_text("utf-8"), (repo / DEVICE).read_text("utf-8")
    if existing or f"\n## {use_case}:" in ifu:
        raise ScaffoldError("USECASE_EXISTS", f"use case {use_case} exists already: "
                            f"{', '.join(existing) or IFU}")

    def read(path: Path) -> dict:
        data: dict = yaml.safe_load((repo / path).read_text("utf-8"))
        return data

    training = read(TRAINING / base / "training.yaml")
    training["use_case"] = use_case
    targets[DEFINITIONS / f"{use_case}.yaml"] = _dump(
        _definition(read(DEFINITIONS / f"{base}.yaml"), use_case, title, phase))
    targets[PROTOCOLS / f"{use_case}.yaml"] = _dump(
        _protocol(read(PROTOCOLS / f"{base}.yaml"), use_case))
    targets[TRAINING / use_case / "training.yaml"] = _dump(training)
    targets[RISK_REVIEWS / f"{use_case}.yaml"] = _dump(
        _review(read(RISK_REVIEWS / f"{base}.yaml"), use_case))
    listed = re.search(r"^use_cases: \[(.*)\]$", device, flags=re.MULTILINE)
    if listed is None:
        raise ScaffoldError("USECASE_INVALID", f"{DEVICE} has no one-line use_cases list")
    header = f"# Scaffolded from {base} by `digital-contrast usecase new`; {GAP} marks what " \
             "must be written.\n"
    for path, text in targets.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(header + str(text), encoding="utf-8")
    (repo / IFU).write_text(ifu.rstrip("\n") + "\n" + _ifu_section(use_case, title), "utf-8")
    ids = [*(u.strip() for u in listed.group(1).split(",") if u.strip()), use_case]
    (repo / DEVICE).write_text(device[:listed.start()] + f"use_cases: [{', '.join(ids)}]"
                               + device[listed.end():], encoding="utf-8")
    return Scaffold(use_case, list(targets), [IFU, DEVICE])

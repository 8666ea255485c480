"""The use cases this installation knows, one YAML definition each (`definitions/<id>.yaml`)."""

from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from digital_contrast.errors import DigitalContrastError
from digital_contrast.usecases.schema import UseCase

DEFINITIONS = Path(__file__).with_name("definitions")


class UseCaseError(DigitalContrastError):
    """Unknown use case, a broken definition, or (later) a use case without a production model."""


def _read(path: Path) -> UseCase:
    try:
        return UseCase.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise UseCaseError("USECASE_INVALID", f"{path.name}: {exc}") from None


@cache
def use_cases() -> dict[str, UseCase]:
    cases = {}
    for path in sorted(DEFINITIONS.glob("*.yaml")):
        case = _read(path)
        if case.id != path.stem:
            raise UseCaseError("USECASE_INVALID", f"{path.name} defines id {case.id!r}")
        cases[case.id] = case
    return cases


def load_use_case(use_case_id: str) -> UseCase:
    try:
        return use_cases()[use_case_id]
    except KeyError:
        known = ", ".join(use_cases()) or "none"
        raise UseCaseError("USECASE_UNKNOWN",
                           f"unknown use case {use_case_id!r}; known: {known}") from None

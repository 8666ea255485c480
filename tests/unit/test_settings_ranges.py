"""Every numeric setting at the edges of its range: the bound is accepted as given, the value
just outside it stops the program at start with CONFIG_INVALID naming the DC_ variable.

The cases are introspected from `Settings` (a bound added later is tested without editing this
file); the ranges the documentation states are pinned below, so that removing or loosening a
bound fails here instead of silently dropping its case."""

import math
import types
from collections.abc import Iterator
from typing import Union, get_args, get_origin

import annotated_types as at
import pytest
from typer.testing import CliRunner

from digital_contrast.cli import app
from digital_contrast.config import Settings, get_settings

Number = int | float
Edge = tuple[str, type, str, Number]  # field, int or float, bound kind (ge/le/gt/lt), bound

# The ranges as README.md and docs/ state them: a change here is a change of the device's
# configuration interface and needs its documents changed too.
PINNED: set[tuple[str, str, Number]] = {
    ("inference_threads", "ge", 1), ("inference_threads", "le", 256),
    ("max_upload_bytes", "gt", 0), ("max_upload_members", "gt", 0),
    ("workers", "ge", 0), ("workers", "le", 32),
    # Finite upper bounds: beyond them a duration or date overflows far from the setting.
    ("job_lease_s", "ge", 5.0), ("job_lease_s", "le", 86_400.0),
    ("auto_run_stable_s", "ge", 0.0), ("auto_run_stable_s", "le", 86_400.0),
    ("retention_days", "gt", 0.0), ("retention_days", "le", 36_500.0),
    ("purge_interval_s", "ge", 0.0), ("purge_interval_s", "le", 2_592_000.0),
    ("carbon_pue", "ge", 1.0), ("carbon_pue", "le", 5.0),
    ("carbon_force_cpu_power_w", "gt", 0), ("carbon_force_cpu_power_w", "le", 10_000),
    ("carbon_force_ram_power_w", "gt", 0), ("carbon_force_ram_power_w", "le", 10_000),
    ("contrast_volume_ml", "gt", 0), ("contrast_volume_ml", "le", 500),
    ("contrast_iodine_mg_per_ml", "gt", 0), ("contrast_iodine_mg_per_ml", "le", 400),
}
_KINDS = {at.Ge: "ge", at.Le: "le", at.Gt: "gt", at.Lt: "lt"}


def _number_type(annotation: object) -> type | None:
    """int or float for `int`, `float` and `float | None`; None for anything else."""
    if get_origin(annotation) in (Union, types.UnionType):
        numbers = [a for a in get_args(annotation) if a in (int, float)]
        return numbers[0] if len(numbers) == 1 else None
    return annotation if annotation in (int, float) else None  # type: ignore[return-value]


def _edges() -> Iterator[Edge]:
    for name, info in Settings.model_fields.items():
        kind = _number_type(info.annotation)
        for meta in info.metadata:
            if type(meta) in _KINDS:
                label = _KINDS[type(meta)]
                yield name, kind or float, label, getattr(meta, label)


EDGES = sorted(_edges(), key=lambda e: (e[0], e[2]))


def _step(kind: type, value: Number, direction: float) -> Number:
    """The next representable value of the setting's type from `value` towards `direction`."""
    if kind is int:
        return int(value) + (1 if direction > 0 else -1)
    return math.nextafter(float(value), direction)


def _inside_and_outside(kind: type, label: str, bound: Number) -> tuple[Number, Number]:
    """The accepted value nearest the bound and the refused value nearest it."""
    if label == "ge":
        return kind(bound), _step(kind, bound, -math.inf)
    if label == "le":
        return kind(bound), _step(kind, bound, math.inf)
    if label == "gt":
        return _step(kind, bound, math.inf), kind(bound)
    return _step(kind, bound, -math.inf), kind(bound)  # lt


def _start(monkeypatch: pytest.MonkeyPatch, variable: str, value: Number):
    """`digital-contrast version` with one DC_ variable set: the program's start check."""
    with monkeypatch.context() as patch:
        patch.setenv(variable, repr(value))
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["version"])
            settings = Settings() if result.exit_code == 0 else None
        finally:
            get_settings.cache_clear()
    return result, settings


@pytest.mark.req("SRS-PKG-007")
def test_every_numeric_setting_has_a_range_and_the_documented_ranges_hold() -> None:
    numeric = {n for n, f in Settings.model_fields.items() if _number_type(f.annotation)}
    bounded = {e[0] for e in EDGES}
    assert numeric - bounded == set(), "a numeric setting without a range"
    assert PINNED - {(name, label, bound) for name, _, label, bound in EDGES} == set(), \
        "a documented bound was removed or changed"


@pytest.mark.req("SRS-PKG-007", "SRS-PKG-002")
@pytest.mark.parametrize(("name", "kind", "label", "bound"), EDGES,
                         ids=[f"{e[0]}-{e[2]}-{e[3]}" for e in EDGES])
def test_a_setting_at_its_bound_is_accepted_and_just_outside_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch, name: str, kind: type, label: str,
        bound: Number) -> None:
    variable = f"DC_{name.upper()}"
    inside, outside = _inside_and_outside(kind, label, bound)

    accepted, settings = _start(monkeypatch, variable, inside)
    assert accepted.exit_code == 0, accepted.output
    assert settings is not None and getattr(settings, name) == inside  # kept exactly as given

    refused, _ = _start(monkeypatch, variable, outside)
    assert refused.exit_code == 2, refused.output
    assert "CONFIG_INVALID" in refused.output and f"{variable}:" in refused.output
    assert "Traceback" not in refused.output

"""Phantom extensions: what one use case adds to the base (aaa-cta) phantom.

An extension is one module in this package that defines `EXTENSION`, a `PhantomExtension`. It
declares its parameter group (fields with valid ranges), samples it from its own named random
streams, chooses the acquisition geometry of its cases, paints its structures into the label map
after the base anatomy, and gives the HU of its labels (and of base labels it changes) in each
phase. The generic modules call these hooks only for a case whose parameters carry the
extension, so ordinary cases are untouched; a new use case adds a module here and its labels at
the end of `Label`, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..labels import Label
from ..parameters import ExtensionGroup, PhantomParameters

if TYPE_CHECKING:
    from ..anatomy import Anatomy, _Canvas

BASE_USE_CASE = "aaa-cta"  # the base phantom, no extension


class PhantomExtension:
    """Hooks of one use case's extension; subclasses override what they need."""

    use_case: ClassVar[str]
    parameters: ClassVar[type[ExtensionGroup]]
    case_prefix: ClassVar[str]  # case ids: prefix + 6-digit seed (the base uses "PH")
    study_description: ClassVar[str]
    series_descriptions: ClassVar[dict[str, tuple[str, int | None]]]  # phase -> (text, delay)
    blood_labels: ClassVar[tuple[Label, ...]] = ()  # well-mixed blood: no texture gain

    def base_overrides(self, seed: int) -> dict[str, Any]:
        """Values of base fields that this use case sets (drawn from its own streams, so the
        base draws keep their places); caller overrides still win."""
        return {}

    def sample_acquisition(self, seed: int, size: str, values: dict[str, Any], pick: Any,
                           overrides: dict[str, Any]) -> None:
        """Pick every acquisition field (values: the base fields sampled so far; overrides:
        the caller's values of this extension's fields)."""
        raise NotImplementedError

    def sample(self, seed: int, base: PhantomParameters, overrides: dict[str, Any]
               ) -> ExtensionGroup:
        """The extension's parameter group for the (complete) base parameters."""
        raise NotImplementedError

    def prepare(self, anatomy: Anatomy) -> Any:
        """Geometry derived once per case, handed to `paint` (None by default)."""
        return None

    def paint(self, anatomy: Anatomy, state: Any, canvas: _Canvas, z: float) -> None:
        """Paint the slice at world z after the base anatomy."""

    def finish(self, anatomy: Anatomy, state: Any, labels: np.ndarray) -> None:
        """Change the complete label map in place (3-D rules, e.g. connectivity)."""

    def phase_values(self, p: PhantomParameters) -> dict[Label, tuple[float, float, float]]:
        """HU (ncct, arterial, portal_venous) of the labels this extension sets or changes."""
        return {}

    def texture(self, p: PhantomParameters) -> dict[Label, float]:
        """Unenhanced texture SD (HU) of labels this extension sets or changes."""
        return {}


@cache
def extensions() -> dict[str, PhantomExtension]:
    """Every extension module of this package, by use case id."""
    found: dict[str, PhantomExtension] = {}
    for module in pkgutil.iter_modules(__path__):
        extension = getattr(importlib.import_module(f"{__name__}.{module.name}"), "EXTENSION",
                            None)
        if isinstance(extension, PhantomExtension):
            if extension.use_case in found or extension.use_case == BASE_USE_CASE:
                raise TypeError(f"phantom extension {extension.use_case!r} is defined twice")
            found[extension.use_case] = extension
    return found


def get_extension(use_case: str) -> PhantomExtension:
    """The extension of `use_case`; a ValueError naming the known ones otherwise."""
    known = extensions()
    if use_case not in known:
        raise ValueError(f"no phantom extension for use case {use_case!r}; known: "
                         f"{', '.join(sorted(known)) or 'none'}")
    return known[use_case]


def use_cases() -> tuple[str, ...]:
    """The use cases the phantom generates: the base one, then every extension."""
    return (BASE_USE_CASE, *sorted(extensions()))

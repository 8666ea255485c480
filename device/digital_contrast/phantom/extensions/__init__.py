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

from .base import PhantomExtension

__all__ = ["BASE_USE_CASE", "PhantomExtension", "extensions", "get_extension", "use_cases"]

BASE_USE_CASE = "aaa-cta"  # the base phantom, no extension


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

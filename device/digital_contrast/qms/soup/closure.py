"""The SOUP scope: the runtime closure of `[project] dependencies`, computed from the installed
distributions' metadata (never typed), and the closure of the tool extras kept apart from it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from email.message import Message
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from digital_contrast.config import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


@dataclass
class Dist:
    """One installed distribution of the closure (`version` None: required but not installed)."""

    name: str  # canonical (PEP 503)
    version: str | None
    licence: str
    required_by: set[str] = field(default_factory=set)  # the direct dependencies pulling it in
    direct: bool = False
    requires: set[str] = field(default_factory=set)  # its own dependencies within the closure


def licence_of(meta: Message) -> str:
    """SPDX `License-Expression`, else a short `License` field, else the licence classifiers."""
    if expression := (meta.get("License-Expression") or "").strip():
        return expression
    text = (meta.get("License") or "").strip()
    # Some projects paste the whole licence text (or just "LICENSE") into this field.
    if text and "\n" not in text and len(text) <= 40 and text.upper() != "LICENSE":
        return text
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    return " / ".join(classifiers) or "not declared in metadata"


def _metadata(name: str) -> Message | None:
    try:
        return distribution(name).metadata  # type: ignore[return-value]
    except PackageNotFoundError:
        return None


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    # Base requirements are evaluated with extra == ""; the requested extras add theirs.
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras})


def closure_of(roots: list[Requirement]) -> dict[str, Dist]:
    """Every distribution `roots` need in this environment, following extras and markers."""
    dists: dict[str, Dist] = {}
    metas: dict[str, Message | None] = {}
    for root in roots:
        if not _applies(root, frozenset()):
            continue
        top = canonicalize_name(root.name)
        seen: set[tuple[str, frozenset[str]]] = set()
        stack = [root]
        while stack:
            req = stack.pop()
            name, extras = canonicalize_name(req.name), frozenset(req.extras)
            if (name, extras) in seen:
                continue
            seen.add((name, extras))
            if name not in metas:
                metas[name] = _metadata(name)
            meta = metas[name]
            dist = dists.get(name)
            if dist is None:
                dist = dists[name] = Dist(name, meta["Version"] if meta else None,
                                          licence_of(meta) if meta else "not installed")
            if name != top:
                dist.required_by.add(top)
            for text in (meta.get_all("Requires-Dist") or []) if meta else []:
                child = Requirement(text)
                if _applies(child, extras):
                    dist.requires.add(canonicalize_name(child.name))
                    stack.append(child)
    for root in roots:
        if (top := canonicalize_name(root.name)) in dists:
            dists[top].direct = True
    return dict(sorted(dists.items()))


def _project(pyproject: Path) -> dict[str, Any]:
    return tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]


def runtime_closure(pyproject: Path = PYPROJECT) -> dict[str, Dist]:
    """The SOUP scope: `[project] dependencies` (torch included) and all they pull in."""
    return closure_of([Requirement(r) for r in _project(pyproject)["dependencies"]])


def tool_closure(pyproject: Path = PYPROJECT,
                 runtime: dict[str, Dist] | None = None) -> dict[str, Dist]:
    """The `test` and `qms` extras' closure minus the runtime: tools of verification and of the
    technical file, not shipped with the device, hence not SOUP."""
    runtime = runtime_closure(pyproject) if runtime is None else runtime
    extras = _project(pyproject).get("optional-dependencies", {})
    tools = closure_of([Requirement(r) for key in ("test", "qms") for r in extras.get(key, [])])
    return {name: dist for name, dist in tools.items() if name not in runtime}

"""The imports the package's modules perform while the tests run: the run-time half of the
architecture check (the static half reads the sources with `ast`, qms/design.py).

A name built at run time (`importlib.import_module(f"digital_contrast.{x}")`) is invisible to
`ast`; the audit sees it when a test exercises it. `install()` wraps `builtins.__import__` and
`importlib.import_module` and records each (importing module, imported module) pair of the
package; modules imported before it was installed, and code run in other processes, are seen
only by the static check. Edges travel in the junit report as one property, `imports`, so the
report alone is the evidence.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any

PACKAGE = "digital_contrast"
PROPERTY = "imports"  # junit testsuite property: "importer>imported" pairs, comma-separated


def _ours(name: str | None) -> bool:
    return bool(name) and (name == PACKAGE or name.startswith(PACKAGE + "."))  # type: ignore[union-attr]


class ImportAudit:
    """Records the package's import edges from the moment `install()` runs to `uninstall()`."""

    def __init__(self) -> None:
        self.edges: set[tuple[str, str]] = set()
        self._saved: tuple[Any, Any] | None = None

    def _record(self, importer: str | None, target: str, fromlist: Iterable[str] = ()) -> None:
        if not (_ours(importer) and _ours(target)):
            return
        # `from pkg import module` depends on the module, `from pkg import name` on pkg.
        modules = [f"{target}.{n}" for n in fromlist or () if f"{target}.{n}" in sys.modules]
        self.edges.update((importer, m) for m in modules or [target])  # type: ignore[misc]

    def install(self) -> None:
        original_import, original_import_module = builtins.__import__, importlib.import_module
        self._saved = (original_import, original_import_module)

        def audited_import(name: str, globals: dict[str, Any] | None = None,
                           locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
            module = original_import(name, globals, locals, fromlist, level)
            importer = (globals or {}).get("__name__")
            if _ours(importer):
                target = name
                if level:
                    try:
                        target = importlib.util.resolve_name("." * level + name,
                                                             (globals or {}).get("__package__"))
                    except (ImportError, ValueError):
                        return module
                self._record(importer, target, fromlist)
            return module

        def audited_import_module(name: str, package: str | None = None) -> Any:
            module = original_import_module(name, package)
            # The caller, past any audit wrapped around this one (an audit under test).
            frame: FrameType | None = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__") == __name__:
                frame = frame.f_back
            self._record(frame.f_globals.get("__name__") if frame else None, module.__name__)
            return module

        builtins.__import__ = audited_import
        importlib.import_module = audited_import_module

    def uninstall(self) -> None:
        if self._saved is not None:
            builtins.__import__, importlib.import_module = self._saved
            self._saved = None

    def serialise(self) -> str:
        return ",".join(f"{a}>{b}" for a, b in sorted(self.edges) if a != b)


def parse_edges(text: str) -> list[tuple[str, str]]:
    """The edges of a junit `imports` property; malformed entries are skipped, never guessed."""
    edges = []
    for entry in text.split(","):
        importer, _, imported = entry.strip().partition(">")
        if _ours(importer) and _ours(imported):
            edges.append((importer, imported))
    return edges

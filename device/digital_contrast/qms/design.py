"""`digital-contrast qms design`: the software detailed design (IEC 62304 5.4.2) generated from
the code, and its verification against the architecture (5.3.6, 5.4.4).

Every module of the package is one software unit. It is read with `ast`, never imported (no
code runs, and a module that fails to import is still described): its docstring (the unit's
purpose), its public classes and functions, and the `digital_contrast` modules it imports,
lazy imports inside functions included. Modules map to items by the `sources` globs of
qms/software_items.yaml; `check_design` holds each import against the importer's `may_use`.
"""

from __future__ import annotations

import ast
import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.diagram import dependency_svg
from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.qms.requirements import Records
from digital_contrast.qms.sources import source_files
from digital_contrast.qms.yaml_records import Problem

DOCUMENT_ID, TITLE = "DC-SDD", "Software detailed design"
DIAGRAM = "design_architecture.svg"  # beside design.md, which links it
PACKAGE = "digital_contrast"
COMPOSITION_ROOT = "digital_contrast.cli"  # the package that imports every item
ENTRY_POINT = "digital_contrast.__main__"  # the one module outside it that may import it


@dataclass(frozen=True)
class Api:
    """A public class or function of a unit."""

    kind: Literal["class", "function"]
    name: str
    signature: str
    summary: str  # first paragraph of its docstring, on one line


@dataclass(frozen=True)
class Import:
    """One import of a module of the package."""

    module: str  # the module imported (`from m import sub` names m.sub when sub is a module)
    item: str | None  # its software item; None when the package has no such module
    line: int
    lazy: bool  # inside a function: still a dependency
    type_checking: bool  # under `if TYPE_CHECKING:`: no run-time dependency, exempt


@dataclass
class Unit:
    """A software unit: one module of the package."""

    module: str
    path: str  # from the repository root
    item: str | None
    docstring: str | None
    api: list[Api] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)  # __all__, a package's interface
    imports: list[Import] = field(default_factory=list)
    parse_error: str | None = None  # reported, so that one broken module cannot stop the check

    @property
    def uses(self) -> list[str]:
        """The other items this unit depends on at run time."""
        return sorted({i.item for i in self.imports
                       if i.item and i.item != self.item and not i.type_checking})


@dataclass
class ItemDesign:
    """A software item as the architecture declares it, with its units."""

    id: str
    name: str
    package: str
    safety_class: str
    interfaces: list[str]
    may_use: list[str]
    units: list[Unit]


@dataclass
class DetailedDesign:
    """The detailed design: every item with its units, in the order of software_items.yaml."""

    items: list[ItemDesign]
    unowned: list[Unit]  # modules no `sources` glob claims (check_items reports them)

    @property
    def units(self) -> list[Unit]:
        return [u for item in self.items for u in item.units] + self.unowned


def _module_name(path: Path, package_dir: Path) -> str:
    parts = (PACKAGE, *path.relative_to(package_dir).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportVisitor(ast.NodeVisitor):
    """The package's modules named by each import statement, wherever it stands."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.known = known
        self.depth = 0
        self.type_checking = False
        self.found: list[tuple[str, int, bool, bool]] = []

    def _add(self, name: str, line: int) -> None:
        entry = (name, line, self.depth > 0, self.type_checking)
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and entry not in self.found:
            self.found.append(entry)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            return self.generic_visit(node)
        saved, self.type_checking = self.type_checking, True
        for statement in node.body:
            self.visit(statement)
        self.type_checking = saved
        for statement in node.orelse:
            self.visit(statement)

    def visit_Call(self, node: ast.Call) -> None:
        """`importlib.import_module("digital_contrast.x")` and `__import__(...)` with a literal
        absolute name are imports too; any other name is left to the run-time audit."""
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else \
            callee.id if isinstance(callee, ast.Name) else None
        first = node.args[0] if node.args else None
        if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                and isinstance(first.value, str):
            self._add(first.value, node.lineno)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: from the package, one level up per extra dot
            base = self.package[:len(self.package) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        for alias in node.names:  # `from pkg import sub` imports the module pkg.sub
            sub = f"{module}.{alias.name}"
            self._add(sub if sub in self.known else module, node.lineno)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = [ast.unparse(b) for b in node.bases] + [ast.unparse(k) for k in node.keywords]
        return f"({', '.join(bases)})" if bases else ""
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async " if isinstance(node, ast.AsyncFunctionDef) else ""
    return f"{prefix}({ast.unparse(node.args)}){returns}"


def _summary(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    # The first paragraph, not the first line: docstrings wrap mid-sentence.
    doc = (ast.get_docstring(node) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _exports(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                return [str(n) for n in ast.literal_eval(node.value)]
            except ValueError:
                return []
    return []


def _api(tree: ast.Module) -> list[Api]:
    return [Api("class" if isinstance(n, ast.ClassDef) else "function", n.name, _signature(n),
                _summary(n))
            for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef
                                              | ast.AsyncFunctionDef)
            and not n.name.startswith("_")]


@dataclass(frozen=True)
class _Reading:
    """What one module's source says: the same text always reads the same."""

    docstring: str | None = None
    api: tuple[Api, ...] = ()
    exports: tuple[str, ...] = ()
    found: tuple[tuple[str, int, bool, bool], ...] = ()  # (module, line, lazy, type-checking)
    parse_error: str | None = None


@lru_cache(maxsize=4096)
def _read(path: Path, stamp: tuple[int, int], module: str, is_package: bool,
          known: frozenset[str]) -> _Reading:
    """Parse and visit one module; cached on its file's (mtime, size), since `qms check` and
    `qms mutate` read the same unchanged sources again and again."""
    del stamp  # part of the cache key only
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        return _Reading(parse_error=str(exc))
    visitor = _ImportVisitor(module, is_package, set(known))
    visitor.visit(tree)
    return _Reading(ast.get_docstring(tree), tuple(_api(tree)), tuple(_exports(tree)),
                    tuple(visitor.found))


def read_detailed_design(records: Records, repo: Path = REPO_ROOT) -> DetailedDesign:
    """Items -> units -> public API and imports, from the source tree under `repo`."""
    package_dir = repo / "device" / PACKAGE
    owners: dict[Path, str] = {}
    for item in records.items.values():
        for pattern in item.sources:
            for path in source_files(pattern, repo):
                owners.setdefault(path.resolve(), item.id)  # several owners: check_items says
    paths = {_module_name(path, package_dir): path
             for path in sorted(package_dir.rglob("*.py"))}
    item_of = {module: owners.get(path.resolve()) for module, path in paths.items()}
    known = frozenset(paths)
    units: dict[str, Unit] = {}
    for module, path in paths.items():
        stat = path.stat()
        reading = _read(path, (stat.st_mtime_ns, stat.st_size), module,
                        path.name == "__init__.py", known)
        imports = [Import(name, item_of.get(name), line, lazy, typing)
                   for name, line, lazy, typing in reading.found]
        units[module] = Unit(module, str(path.relative_to(repo)), item_of[module],
                             reading.docstring, list(reading.api), list(reading.exports),
                             imports, reading.parse_error)
    items = [ItemDesign(i.id, i.name, i.package, i.safety_class, list(i.interfaces),
                        list(i.may_use), [u for u in units.values() if u.item == i.id])
             for i in records.items.values()]
    return DetailedDesign(items, [u for u in units.values() if u.item is None])


def _in_root(module: str) -> bool:
    return module == COMPOSITION_ROOT or module.startswith(COMPOSITION_ROOT + ".")


def _import_problem(unit: Unit, imp: Import, allowed: set[str], known: set[str],
                    records: Records, shared: bool, observed: bool = False
                    ) -> Problem | None:
    verb = "imports at run time (import audit of the test run)" if observed else \
        "lazily imports" if imp.lazy else "imports"
    what = f"{unit.module} ({unit.item}) {verb}"
    if imp.module not in known:
        return Problem(unit.path, imp.line or None,
                       f"{what} {imp.module}: no such module in the package")
    if _in_root(imp.module) and not (_in_root(unit.module) or unit.module == ENTRY_POINT):
        return Problem(unit.path, imp.line or None, f"{what} {COMPOSITION_ROOT}: only "
                       f"{ENTRY_POINT} may import the command line, the composition root")
    if imp.item is None or imp.item in allowed:  # an unowned module: check_items reports it
        return None
    if shared:
        return Problem(unit.path, imp.line or None, f"{what} {imp.module} ({imp.item}): a shared "
                       f"module of {unit.item} imports no other item (only "
                       f"{COMPOSITION_ROOT} composes the items)")
    may_use = ", ".join(records.items[unit.item].may_use) if unit.item else ""
    return Problem(unit.path, imp.line or None, f"{what} {imp.module} ({imp.item}): {imp.item} "
                   f"is not in {unit.item}'s may_use [{may_use}] (qms/software_items.yaml)")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph` (module -> modules it imports): its strongly connected
    components of more than one module, each sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for used in sorted(graph[module]):
            if used not in index:
                visit(used)
                low[module] = min(low[module], low[used])
            elif used in stack:
                low[module] = min(low[module], index[used])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _two_way_edges(records: Records) -> list[tuple[str, str]]:
    """Pairs of items that may use each other: a circle in the design. The system item is
    exempt: every item uses its shared base, and its own may_use is its entry point's."""
    items = {i.id: i for i in records.items.values() if i.package != PACKAGE}
    return [(item.id, used) for item in sorted(items.values(), key=lambda i: i.id)
            for used in item.may_use
            if used in items and item.id < used and item.id in items[used].may_use]


def _import_cycles(design: DetailedDesign) -> list[Problem]:
    """Modules of one item that import each other (lazy imports included), reported at the
    first module's import into the circle."""
    units = {u.module: u for u in design.units}
    graph = {u.module: {i.module for i in u.imports if not i.type_checking
                        and i.module in units and units[i.module].item == u.item
                        and i.module != u.module} for u in design.units}
    problems = []
    for cycle in _cycles(graph):
        first = units[cycle[0]]
        line = next(i.line for i in first.imports if i.module in cycle and not i.type_checking)
        problems.append(Problem(first.path, line, "import cycle: " + " <-> ".join(cycle)))
    return problems


def check_design(design: DetailedDesign, records: Records) -> list[Problem]:
    """Each unit has a docstring; each run-time import stays within the importer's `may_use`,
    reported at the importing line; only the entry point imports the command line; `may_use`
    names known items."""
    problems: list[Problem] = []
    doc = records.documents.get("items")
    if doc is not None:
        index = {row.get("id"): i for i, row in enumerate(doc.data.get("software_items", []))
                 if isinstance(row, dict)}
        problems += [doc.problem(("software_items", index[item.id], "may_use", k),
                                 f"{item.id}: may_use names unknown item {used}")
                     for item in records.items.values() for k, used in enumerate(item.may_use)
                     if used not in records.items]
        problems += [doc.problem(("software_items", index[first], "may_use"),
                                 f"{first} and {second} may use each other: a two-way edge is "
                                 "a circle") for first, second in _two_way_edges(records)]
    known = {u.module for u in design.units}
    system = _system_item(records)
    for unit in design.units:
        if unit.parse_error:
            problems.append(Problem(unit.path, None, f"{unit.module} cannot be parsed: "
                                                     f"{unit.parse_error}"))
        elif not (unit.docstring or "").strip():
            problems.append(Problem(unit.path, 1, f"{unit.module} has no module docstring (the "
                                                  "unit's purpose in its detailed design)"))
        if unit.item not in records.items:
            continue
        shared, allowed = _allowed(unit, unit.item, records, system)
        problems += [p for imp in unit.imports if not imp.type_checking
                     if (p := _import_problem(unit, imp, allowed, known, records, shared))]
    problems += _import_cycles(design)
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


def _system_item(records: Records) -> str | None:
    return next((i.id for i in records.items.values() if i.package == PACKAGE), None)


def _allowed(unit: Unit, item: str, records: Records, system: str | None
             ) -> tuple[bool, set[str]]:
    """(whether the unit is a shared base module, the items it may import)."""
    # SI-SYSTEM's may_use is its entry point's; its other modules are the base every item uses.
    shared = item == system and unit.module != ENTRY_POINT
    return shared, {item} if shared else {item, *records.items[item].may_use}


def check_observed_imports(design: DetailedDesign, records: Records,
                           edges: tuple[tuple[str, str], ...]) -> list[Problem]:
    """The imports the test run saw (qms/import_audit.py) held to the same rules: a name
    computed at run time escapes `ast`, not the audit."""
    units = {u.module: u for u in design.units}
    system = _system_item(records)
    problems = []
    for importer, imported in edges:
        unit = units.get(importer)
        if unit is None or unit.item is None or unit.item not in records.items:
            continue  # a module that no longer exists: the report's tree check says so
        target = units.get(imported)
        imp = Import(imported, target.item if target else None, 0, True, False)
        shared, allowed = _allowed(unit, unit.item, records, system)
        problem = _import_problem(unit, imp, allowed, set(units), records, shared,
                                  observed=True)
        if problem is not None:
            problems.append(problem)
    return sorted(set(problems), key=lambda p: (p.file, p.message))


def _unit_json(unit: Unit) -> dict[str, Any]:
    return {**asdict(unit), "uses": unit.uses}


def write_design(out_dir: Path, design: DetailedDesign,
                 problems: list[Problem] | None = None, repo: Path = REPO_ROOT) -> list[Path]:
    """DC-SDD as HTML, PDF and Markdown with the item dependency diagram (an SVG beside them),
    and design.json; `problems` (from `check_design`) is the
    verification result the document states, None when it was not checked."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = document_header(DOCUMENT_ID, TITLE,
                               source="device/digital_contrast/ (read with ast), "
                                      "qms/software_items.yaml",
                               approvals=("Development lead", "Quality", "Regulatory affairs"),
                               records=("device/digital_contrast", "qms/software_items.yaml"),
                               repo=repo)
    units = design.units
    summary = {"software_items": len(design.items), "units": len(units),
               "public": sum(len(u.api) for u in units),
               "edges": sum(len(u.uses) for u in units)}
    verification = None if problems is None else [str(p) for p in problems]
    # The picture of the items' may_use, the same edges as docs/architecture.md's Mermaid
    # source; embedded in the HTML (and so the PDF) so that the record stands alone.
    svg = out_dir / DIAGRAM
    svg.write_text(dependency_svg(design.items), encoding="utf-8")
    context = {"document": document, "items": design.items, "unowned": design.unowned,
               "summary": summary, "verification": verification,
               "composition_root": COMPOSITION_ROOT, "diagram_file": DIAGRAM,
               "diagram_uri": "data:image/svg+xml;base64,"
                              + base64.b64encode(svg.read_bytes()).decode("ascii")}
    html = render("design.html.j2", context, out_dir / "design.html")
    written = [html, write_pdf(html), render("design.md.j2", context, out_dir / "design.md"),
               svg]
    json_path = out_dir / "design.json"
    json_path.write_text(json.dumps({
        "document": document, "generated_at": datetime.now(UTC).isoformat(),
        "summary": summary, "verification": verification,
        "items": [{**{k: v for k, v in asdict(i).items() if k != "units"},
                   "units": [_unit_json(u) for u in i.units]} for i in design.items],
        "unowned": [_unit_json(u) for u in design.unowned]}, indent=2) + "\n", encoding="utf-8")
    return [*written, json_path]

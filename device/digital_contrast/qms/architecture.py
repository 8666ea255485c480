"""docs/architecture.md kept true: its dependency diagram is generated from
qms/software_items.yaml (`qms diagram` rewrites it), and every module it names must exist."""

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.requirements import Records
from digital_contrast.qms.yaml_records import Problem

ARCHITECTURE = "docs/architecture.md"
START, END = "<!-- dependency-diagram:start", "<!-- dependency-diagram:end -->"
SYSTEM = "SI-SYSTEM"  # used by every item: drawn as a note, not as an edge from each
_MODULE = re.compile(r"`(digital_contrast(?:\.[a-z_]+)*)`")


def _node(item_id: str) -> str:
    return item_id.replace("-", "_")


class Item(Protocol):
    """What the diagram reads of a software item (a record, or its design)."""

    @property
    def id(self) -> str: ...
    @property
    def package(self) -> str: ...
    @property
    def may_use(self) -> Sequence[str]: ...


def dependency_nodes(items: Iterable[Item]) -> list[tuple[str, str]]:
    """(item id, package label) of each item, in the order of qms/software_items.yaml: the
    boxes of both renderings of the diagram (Mermaid here, SVG in the design record)."""
    return [(item.id, item.package.removeprefix("digital_contrast").lstrip(".") or "shared base")
            for item in items]


def dependency_edges(items: Iterable[Item]) -> list[tuple[str, str]]:
    """(user, used) for each `may_use` entry but the shared base, which every item may use:
    the arrows of both renderings."""
    return [(item.id, used) for item in items for used in item.may_use if used != SYSTEM]


def dependency_diagram(records: Records) -> str:
    """A Mermaid flowchart of the items and their `may_use` edges."""
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'    {_node(item_id)}["{item_id}<br/>{label}"]'
              for item_id, label in dependency_nodes(records.items.values())]
    lines += [f"    {_node(user)} --> {_node(used)}"
              for user, used in dependency_edges(records.items.values())]
    lines += ["```", "", f"Every item may also use {SYSTEM} (the shared base); arrows point "
              "from the user to the used."]
    return "\n".join(lines)


def _block(text: str) -> tuple[int, int] | None:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text.index("\n", start) + 1, end


def write_diagram(records: Records, repo: Path = REPO_ROOT) -> bool:
    """Rewrite the diagram between the markers; True when it changed."""
    path = repo / ARCHITECTURE
    text = path.read_text(encoding="utf-8")
    span = _block(text)
    if span is None:
        raise ValueError(f"{path} has no {START} ... {END} block")
    new = text[:span[0]] + dependency_diagram(records) + "\n" + text[span[1]:]
    path.write_text(new, encoding="utf-8")
    return new != text


def check_architecture(records: Records, repo: Path = REPO_ROOT) -> list[Problem]:
    """The diagram is the generated one; every `digital_contrast...` module named exists."""
    path = repo / ARCHITECTURE
    if not path.is_file():
        return [Problem(ARCHITECTURE, None, "the architecture document is missing")]
    text = path.read_text(encoding="utf-8")
    problems = []
    span = _block(text)
    if span is None or text[span[0]:span[1]].strip() != dependency_diagram(records).strip():
        problems.append(Problem(ARCHITECTURE, None, "the dependency diagram is not the one "
                                "generated from qms/software_items.yaml: run "
                                "`digital-contrast qms diagram`"))
    for number, line in enumerate(text.splitlines(), start=1):
        for module in _MODULE.findall(line):
            base = repo.joinpath("device", *module.split("."))
            if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
                problems.append(Problem(ARCHITECTURE, number,
                                        f"names {module}, which does not exist"))
    return problems

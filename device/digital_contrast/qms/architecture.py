"""docs/architecture.md kept true: its dependency diagram is generated from
qms/software_items.yaml (`qms diagram` rewrites it), and every module it names must exist."""

import re
from pathlib import Path

from digital_contrast.config import REPO_ROOT
from digital_contrast.qms.requirements import Records
from digital_contrast.qms.yaml_records import Problem

ARCHITECTURE = "docs/architecture.md"
START, END = "<!-- dependency-diagram:start", "<!-- dependency-diagram:end -->"
SYSTEM = "SI-SYSTEM"  # used by every item: drawn as a note, not as an edge from each
_MODULE = re.compile(r"`(digital_contrast(?:\.[a-z_]+)*)`")


def _node(item_id: str) -> str:
    return item_id.replace("-", "_")


def dependency_diagram(records: Records) -> str:
    """A Mermaid flowchart of the items and their `may_use` edges."""
    lines = ["```mermaid", "flowchart TD"]
    for item in records.items.values():
        package = item.package.removeprefix("digital_contrast").lstrip(".") or "shared base"
        lines.append(f'    {_node(item.id)}["{item.id}<br/>{package}"]')
    for item in records.items.values():
        lines += [f"    {_node(item.id)} --> {_node(used)}" for used in item.may_use
                  if used != SYSTEM]
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

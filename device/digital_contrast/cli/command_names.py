"""The names of the command line's commands (`<group> <verb>` and top-level verbs), which the
clause map and release records cite, read from the running program's command tree."""

from typing import Any


def command_names(root: Any) -> set[str]:
    """Every top-level verb and `<group> <verb>` under `root`, a Typer (click) group: a group
    is any command that has `commands` of its own."""
    names: set[str] = set()
    for name, command in root.commands.items():
        verbs = getattr(command, "commands", None)
        names |= {name} if verbs is None else {f"{name} {verb}" for verb in verbs}
    return names

"""Line numbers in YAML text, for error messages that say where a record is wrong.

`YamlLines(text).line(loc)` maps a location (mapping keys and list indexes, as pydantic reports
them) to the 1-based line of the deepest node of it that exists. The node tree is composed on
first use only: a valid file never pays for it.
"""

from functools import cached_property

import yaml

Loc = tuple[str | int, ...]
# libyaml's loader where the wheel has it (it does on every platform we ship): the same safe
# types and marks, several times faster on the technical file's thousands of lines.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLines:
    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def _root(self) -> yaml.Node | None:
        try:
            return yaml.compose(self.text, Loader=SAFE_LOADER)
        except yaml.YAMLError:
            return None

    def line(self, loc: Loc) -> int | None:
        node, found = self._root, None
        for part in loc:
            if node is None:
                break
            found = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                node = None
        return node.start_mark.line + 1 if node is not None else found

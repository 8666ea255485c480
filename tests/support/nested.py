"""Edits of nested test data (a loaded YAML record) at a path of keys and indexes."""

from collections.abc import Callable
from typing import Any

Edit = Callable[[Any], None]


def _parent(data: Any, keys: tuple[str | int, ...]) -> Any:
    for key in keys[:-1]:
        data = data[key]
    return data


def set_at(*keys: str | int, value: Any) -> Edit:
    def edit(data: Any) -> None:
        _parent(data, keys)[keys[-1]] = value
    return edit


def delete_at(*keys: str | int) -> Edit:
    def edit(data: Any) -> None:
        del _parent(data, keys)[keys[-1]]
    return edit

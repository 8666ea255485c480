"""What every command shares: the consoles, and user errors as `CODE: message` with exit 2."""

import functools
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from digital_contrast.errors import DigitalContrastError

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def fail(code: str, detail: str) -> typer.Exit:
    err_console.print(f"[bold red]{code}[/]: {detail}", highlight=False)
    return typer.Exit(2)


def user_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Report a user error as `CODE: message` with exit status 2, never as a traceback."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            return func(*args, **kwargs)
        except DigitalContrastError as exc:
            verdict = getattr(exc, "verdict", None)
            for check in verdict.failures if verdict is not None else []:
                err_console.print(f"  {check.code}: {check.message} (measured {check.measured})",
                                  highlight=False)
            raise fail(exc.code, exc.detail) from None

    return wrapper

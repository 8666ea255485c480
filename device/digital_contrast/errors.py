"""Base of every error a user can meet: a stable machine-readable code plus a plain message."""


class DigitalContrastError(Exception):
    """An error with a stable `code` (part of the interface) and a `detail` for people."""

    code: str = "DC_ERROR"

    def __init__(self, code: str | None = None, detail: str = "") -> None:
        if code is not None:
            self.code = code
        self.detail = detail
        super().__init__(f"{self.code}: {detail}" if detail else self.code)

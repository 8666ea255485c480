"""The process's scrubbing log handler writing to a buffer for one test, and the JSON lines."""

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from digital_contrast.logs import ROUTED_LOGGERS, configure_logging


@contextmanager
def configured_logging() -> Iterator[io.StringIO]:
    """configure_logging() into a buffer; every global it changes is restored afterwards."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in ROUTED_LOGGERS}
    hooks = (sys.excepthook, threading.excepthook, warnings.showwarning, list(warnings.filters))
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        yield stream
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)
        sys.excepthook, threading.excepthook, warnings.showwarning = hooks[:3]
        warnings.filters[:] = hooks[3]


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]

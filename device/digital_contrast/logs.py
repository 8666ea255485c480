"""Process logging of the long-running commands (serve, worker, dimse, purge): one handler on the
root logger writing JSON lines (or text) to standard error, every record scrubbed first.

What is scrubbed, whoever logs:
- exceptions keep their type and frames (file:line function) only: an exception's message and
  its locals may quote a DICOM value (a patient's name) or a secret;
- secrets: API keys (`dc_<prefix>_<secret>`), Bearer/Basic credentials, passwords in URLs
  (`postgresql://user:pw@host`, broker URLs) and `password=` style pairs;
- messages of every logger outside this package (pydicom, pynetdicom, highdicom, warnings,
  uvicorn, Starlette, asyncio...) are untrusted: quoted values, bracketed values, what follows
  a VR (`PN: ...`) and URL query strings are replaced by a redaction mark. Messages of the DICOM
  libraries and of warnings lose everything after their first `: ` on each line as well; the
  tags and dictionary keywords found there are kept, so the class of problem stays readable.
The request id of the HTTP request being served (`REQUEST_ID`) is added to every record.

This module imports no other item of the system (SI-SYSTEM's shared modules).
"""

import json
import logging
import re
import sys
import threading
import traceback
import warnings
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

LogFormat = Literal["json", "text"]
REQUEST_ID: ContextVar[str | None] = ContextVar("digital_contrast_request_id", default=None)
REDACTED = "<redacted>"
OWN_PREFIX = "digital_contrast"
# Libraries whose messages quote data set content; their DEBUG output dumps whole data sets.
DICOM_LOGGERS = ("pydicom", "pynetdicom", "highdicom")
WARNINGS_LOGGER = "py.warnings"
# Handlers of their own would bypass the scrubber: removed, and their records propagate here.
ROUTED_LOGGERS = (*DICOM_LOGGERS, WARNINGS_LOGGER, "uvicorn", "uvicorn.error", "uvicorn.access",
                  "starlette", "fastapi", "asyncio", "codecarbon", "alembic", "mlflow")
# Extra record fields written to the JSON line (events of our own code); nothing else of a
# record's __dict__ is (uvicorn's `color_message` repeats the raw message, for one).
FIELDS = ("event", "code", "method", "route", "status", "duration_ms", "error_id", "job_id")
MAX_FRAMES = 40
MAX_UNTRUSTED_CHARS = 2000

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bdc_[0-9a-fA-F]{4,}_[A-Za-z0-9_-]+"), "dc_" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s,;'\"]+"), r"\1\2" + REDACTED),
    (re.compile(r"(?i)\b(x-api-key['\"]?\s*[:=,]\s*['\"]?)[^\s,;'\"]+"), r"\1" + REDACTED),
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s@/]*@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key|apikey)(['\"]?\s*[=:]\s*)"
                r"['\"]?[^\s&,;'\"]+"), r"\1\2" + REDACTED),
)
_VRS = ("AE|AS|AT|CS|DA|DS|DT|FD|FL|IS|LO|LT|OB|OD|OF|OL|OV|OW|PN|SH|SL|SQ|SS|ST|SV|TM|UC|UI|"
        "UL|UN|UR|US|UT|UV")
_AFTER_VR = re.compile(rf"(\b(?:{_VRS})\s*:\s*)\S.*")
# A quote opens only where no letter or digit precedes it (Patient's Name is not a value).
_QUOTED = re.compile(r"""(?<![A-Za-z0-9])b?(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`[^`\n]*`)""")
_BRACKETED = re.compile(r"\[[^\]\n]*\]")
_QUERY = re.compile(r"\?[^\s'\"]*")
_TAG = re.compile(r"\(?\b[0-9A-Fa-f]{4},\s?[0-9A-Fa-f]{4}\b\)?")
_WORD = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")


def scrub_secrets(text: str) -> str:
    """`text` without API keys, credentials or passwords in URLs."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _dictionary_keywords() -> frozenset[str]:
    # Only once pydicom is loaded: a message of pydicom's means it is.
    datadict = sys.modules.get("pydicom.datadict")
    return frozenset(getattr(datadict, "keyword_dict", {}))


def _dicom_line(line: str, keywords: frozenset[str]) -> str:
    head, sep, tail = line.partition(": ")
    if not sep:
        return line
    kept = [t.group(0) for t in _TAG.finditer(tail)]
    kept += [w.group(0) for w in _WORD.finditer(tail) if w.group(0) in keywords]
    return f"{head}: {REDACTED}" + (f" [{' '.join(dict.fromkeys(kept))}]" if kept else "")


def scrub_untrusted(text: str, *, dicom: bool) -> str:
    """A message of a library: values redacted, structure kept. `dicom`: a DICOM library's or
    a warning, of which only the part before each line's first `: ` (and its tags) is kept."""
    text = text[:MAX_UNTRUSTED_CHARS]
    lines = []
    keywords = _dictionary_keywords() if dicom else frozenset()
    for line in text.splitlines() or [""]:
        line = _AFTER_VR.sub(r"\1" + REDACTED, line)
        line = _QUOTED.sub(REDACTED, line)
        line = _QUERY.sub("?" + REDACTED, line)
        if dicom:
            line = _BRACKETED.sub(REDACTED, line)
            line = _dicom_line(line, keywords)
        lines.append(line)
    return scrub_secrets("\n".join(lines))


def exception_summary(exc_info: tuple[type[BaseException], BaseException,
                                      TracebackType | None]) -> dict[str, Any]:
    """Type and frames of an exception and of those it was raised from or during; never a
    message, an argument or a local variable."""
    exc: BaseException | None = exc_info[1]
    types: list[str] = []
    frames: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        kind = type(exc)
        types.append(kind.__name__ if kind.__module__ == "builtins"
                     else f"{kind.__module__}.{kind.__qualname__}")
        if not frames:  # the outermost exception's frames say where it surfaced
            frames = [f"{_short(f.filename)}:{f.lineno} {f.name}"
                      for f in traceback.extract_tb(exc.__traceback__)][-MAX_FRAMES:]
        exc = exc.__cause__ or exc.__context__
    return {"exc_type": types[0] if types else "", "exc_chain": types[1:], "frames": frames}


def _short(filename: str) -> str:
    for marker in ("site-packages/", "device/"):
        if marker in filename:
            return filename.rsplit(marker, 1)[1]
    return filename


class ScrubFilter(logging.Filter):
    """Rewrites every record before any formatter sees it (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string of a library: its template, values left out
            message = str(record.msg)
        own = record.name == OWN_PREFIX or record.name.startswith(OWN_PREFIX + ".")
        if not own:
            dicom = record.name == WARNINGS_LOGGER or record.name.split(".")[0] in DICOM_LOGGERS
            message = scrub_untrusted(message, dicom=dicom)
        record.msg, record.args = scrub_secrets(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_summary = exception_summary(record.exc_info)  # type: ignore[arg-type]
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        for name in FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = scrub_secrets(value)
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON line of a scrubbed record."""
    line: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname, "logger": record.name, "message": record.msg,
        "pid": record.process}  # which process, where a service runs several
    if getattr(record, "request_id", None):
        line["request_id"] = record.request_id
    for name in FIELDS:
        value = record.__dict__.get(name)
        if isinstance(value, str | int | float | bool):
            line[name] = value
    summary = getattr(record, "exc_summary", None)
    if summary:
        line.update(summary)
    return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, pid, request_id, event
    fields, exc_type/exc_chain/frames."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=True, default=str)


class TextFormatter(logging.Formatter):
    """The same fields as one human-readable line (for a terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        line = _fields(record)
        text = f"{line.pop('time')} {line.pop('level'):<8} {line.pop('logger')}"
        if "request_id" in line:
            text += f" [{line.pop('request_id')}]"
        text += f" {line.pop('message')}"
        return text + "".join(f" {k}={v}" for k, v in line.items())


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is written, not when it was made: a
    command run in-process (tests, a host that redirects it) may replace and close it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def make_handler(log_format: LogFormat = "json",
                 stream: Any = None) -> logging.Handler:
    """The scrubbing handler (standard error unless `stream` is given)."""
    handler = logging.StreamHandler(stream) if stream is not None else _StandardError()
    handler.addFilter(ScrubFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(log_format: LogFormat = "json", level: str = "INFO",
                      stream: Any = None) -> logging.Handler:
    """Make the scrubbing handler the only one of the process (replacing any earlier one) and
    route warnings, the libraries' loggers and uncaught exceptions through it."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = make_handler(log_format, stream)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in DICOM_LOGGERS:  # never their DEBUG/INFO: data set dumps, one line per element
        logging.getLogger(name).setLevel(logging.WARNING)
    # Never uvicorn's access lines (they carry query values, e.g. PatientName): the app logs
    # each request by its route template (api.request_ids), in every HTTP process.
    logging.getLogger("uvicorn.access").disabled = True
    logging.captureWarnings(True)
    # Then our own text: captureWarnings' puts the file before the message (the scrubber keeps
    # what comes before the first ": " of a DICOM or warning message) and adds the source line.
    warnings.showwarning = _log_warning
    warnings.simplefilter("default")  # each distinct warning once per place, not per element
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    return handler


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    logging.getLogger(WARNINGS_LOGGER).warning("%s in %s:%d - %s", category.__name__,
                                               _short(filename), lineno, message)


_uncaught = logging.getLogger(f"{OWN_PREFIX}.uncaught")


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    _uncaught.critical("uncaught exception; the process stops", exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    _uncaught.error("uncaught exception in thread %s", name,
                    exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


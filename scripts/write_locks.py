"""Split the pinned closure of a working venv into the two lock files the Makefile installs:
`requirements.lock`, the runtime closure (`[project] dependencies` and what they pull in, plus
the build backend the editable install needs), for `make run`; and `requirements-dev.lock`, the
test and technical-file tools, added by `make test`. Run by `make lock`; reads `pip freeze`
lines on standard input (torch and CUDA wheels already filtered out)."""

import re
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from digital_contrast.qms.soup.closure import runtime_closure

ROOT = Path(__file__).resolve().parent.parent
BUILD = {"setuptools"}  # [build-system] requires, for `pip install --no-build-isolation -e .`
HEADER = ("# {what}, installed after torch==2.13.0 (see Makefile).\n"
          "# Regenerate both lock files with 'make lock' from a working venv.\n")


def main() -> None:
    runtime = {canonicalize_name(name) for name in runtime_closure()} | BUILD
    pins = [line.strip() for line in sys.stdin if line.strip() and not line.startswith("#")]
    name = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
    ours = [p for p in pins if canonicalize_name(name.match(p).group(1)) in runtime]  # type: ignore[union-attr]
    tools = [p for p in pins if p not in ours]
    (ROOT / "requirements.lock").write_text(
        HEADER.format(what="Exact runtime closure (make run)") + "\n".join(ours) + "\n")
    (ROOT / "requirements-dev.lock").write_text(
        HEADER.format(what="Test and technical-file tools, beyond requirements.lock "
                           "(make test)") + "\n".join(tools) + "\n")
    print(f"requirements.lock: {len(ours)} pins; requirements-dev.lock: {len(tools)} pins")


if __name__ == "__main__":
    main()

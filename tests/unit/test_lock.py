"""The committed locks are the installed environment: exact pins, no CUDA, torch apart; the
runtime lock (`make run`) holds the runtime closure and no test or document tool."""

import re
from importlib.metadata import distributions, version
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK, DEV_LOCK = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _pins(*locks: Path) -> dict[str, str]:
    pins = {}
    for line in "\n".join(lock.read_text() for lock in locks or (RUNTIME_LOCK, DEV_LOCK)
                         ).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


@pytest.mark.req("SRS-PKG-001")
def test_lock_pins_exact_versions_without_torch_or_cuda() -> None:
    pins = _pins()
    assert pins, "empty lock"
    assert "torch" not in pins
    # CUDA runtime wheels (nvidia-cublas-cu12, nvidia-nccl-...) must never be locked;
    # nvidia-ml-py is only NVML bindings, used by CodeCarbon to read GPU power.
    cuda = re.compile(r"^nvidia-(cu|nccl|nvjitlink|nvtx|nvshmem)")
    assert not [name for name in pins if cuda.match(name) or name == "triton"]
    for needed in ("pydicom", "numpy", "nibabel", "pydantic-settings", "typer", "pytest"):
        assert needed in pins


@pytest.mark.req("SRS-PKG-001")
def test_installed_environment_matches_the_lock() -> None:
    pins = _pins()
    mismatched = {name: (pinned, version(name)) for name, pinned in pins.items()
                  if version(name) != pinned}
    assert not mismatched
    installed = {canonicalize_name(d.metadata["Name"]) for d in distributions()}
    unlocked = installed - set(pins) - {"torch", "pip", "digital-contrast"}
    assert not unlocked, f"installed but not locked: {sorted(unlocked)}"
    assert version("torch") == "2.13.0" or version("torch").startswith("2.13.0+")


@pytest.mark.req("SRS-PKG-001")
def test_the_runtime_lock_is_the_runtime_closure_without_tools() -> None:
    from digital_contrast.qms.soup.closure import runtime_closure

    runtime = set(_pins(RUNTIME_LOCK))
    closure = {canonicalize_name(name) for name in runtime_closure()} - {"torch"}
    assert closure <= runtime, f"runtime dependencies missing: {sorted(closure - runtime)}"
    assert not runtime & set(_pins(DEV_LOCK)), "a distribution is pinned in both locks"
    for tool in ("pytest", "ruff", "weasyprint", "playwright", "schemathesis"):
        assert tool not in runtime
    assert runtime - closure <= {"setuptools"}  # the build backend of the editable install

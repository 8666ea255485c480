"""The vulnerability audit of the runtime closure (pip-audit, IEC 62304 7.1.2, 8.1.2): a record
that says what was looked up and when it could not be, never a silent "no vulnerabilities"."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from packaging.version import Version

from digital_contrast.qms.soup.closure import Dist
from digital_contrast.qms.soup.platform import Measured, measure_platform
from digital_contrast.qms.soup.vendored import Vendored, vendored_components


def audit_vulnerabilities(closure: dict[str, Dist], timeout_s: float = 20,
                          service: str = "pypi", *,
                          vendored: dict[str, Vendored] | None = None,
                          platform: dict[str, Measured] | None = None) -> dict[str, Any]:
    """pip-audit over the closure's exact versions; a record that says when it could not run.

    `status` is `completed` (every distribution looked up), `incomplete` (some skipped, listed
    with the reason) or `unavailable` (none looked up, or the tool failed): never a silent
    "no vulnerabilities". `timeout_s` bounds each request to the service. Vendored npm files
    and the platform components (interpreter, OS, Debian packages, servers) are listed under
    `not_audited`: pip-audit does not cover them.
    """
    try:
        tool = f"pip-audit {installed_version('pip-audit')}"
    except PackageNotFoundError:
        tool = "pip-audit (not installed)"
    record: dict[str, Any] = {"tool": tool, "service": service,
                              "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
    # A local label (torch +cpu) is a build of the public release the advisories name.
    pins = {d.name: Version(d.version).public for d in closure.values() if d.version}
    vendored = vendored_components() if vendored is None else vendored
    platform = measure_platform() if platform is None else platform
    record["not_audited"] = ([f"{d.name}: not installed" for d in closure.values()
                              if d.version is None]
                             + [f"{v.name} {v.version}: npm, outside pip-audit's scope"
                                for v in vendored.values()]
                             + [f"{m.name} {m.version or '(version not measured)'}: platform "
                                f"({m.kind}), outside pip-audit's scope"
                                for m in platform.values()])
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
        command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
                   "--disable-pip", "--format", "json", "--progress-spinner", "off",
                   "--vulnerability-service", service, "--timeout", str(max(1, round(timeout_s))),
                   "--cache-dir", str(Path(tmp) / "cache")]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=timeout_s * 10 + 30)
        except subprocess.TimeoutExpired:
            return {**record, "status": "unavailable",
                    "reason": f"pip-audit did not finish within {timeout_s * 10 + 30:.0f} s"}
    return {**record, **parse_audit(done.stdout, done.stderr, len(pins))}


def parse_audit(stdout: str, stderr: str, submitted: int) -> dict[str, Any]:
    """The status, vulnerabilities and skipped distributions of pip-audit's JSON output."""
    try:
        report = json.loads(stdout)
        dependencies = report["dependencies"]
    except (json.JSONDecodeError, KeyError, TypeError):
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return {"status": "unavailable",
                "reason": f"pip-audit failed: {lines[-1] if lines else 'no output'}"}
    skipped = [f"{d['name']}: {d['skip_reason']}" for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerabilities = [{"name": d["name"], "version": d.get("version"), "id": v.get("id"),
                        "aliases": v.get("aliases", []), "fix_versions": v.get("fix_versions", []),
                        "description": v.get("description", "")}
                       for d in audited for v in d.get("vulns", [])]
    counts = {"submitted": submitted, "audited": len(audited), "skipped": skipped}
    if not audited:
        # What a registry-only network gives: pypi.org answers 404 to every JSON lookup, and
        # pip-audit then says "No known vulnerabilities found" with exit status 0. No
        # `vulnerabilities` key here: an empty list would read as a clean result.
        first = skipped[0] if skipped else "no dependency in the report"
        return {**counts, "status": "unavailable",
                "reason": f"the vulnerability service answered for none of the {submitted} "
                          f"distributions (first: {first})"}
    return {**counts, "status": "incomplete" if skipped else "completed",
            "vulnerabilities": vulnerabilities}

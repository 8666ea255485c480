"""A process of the service killed at a chosen point of its work (run by the no-orphan
tests): `python -m tests.support.crash_child POINT [FILES...]` with the service's DC_ settings
in the environment. It does real work through the real code and, at POINT, prints BLOCKED
and waits to be killed with SIGKILL."""

import sys
import time
from pathlib import Path

from digital_contrast.config import get_settings
from digital_contrast.intake import ingestion
from digital_contrast.intake.instance import validate_instance
from digital_contrast.jobs import runner
from digital_contrast.jobs.worker import Worker
from digital_contrast.service import open_state


def block(*_args: object, **_kwargs: object) -> None:
    print("BLOCKED", flush=True)
    time.sleep(3600)


def _ingest(point: str, files: list[Path]) -> None:
    state = open_state(get_settings())
    parsed = [validate_instance(f.read_bytes()) for f in files]

    def drawn_then_stalled():  # a body that stops arriving after three parts
        yield from parsed[:3]
        time.sleep(1)  # the writer threads finish the three files
        block()

    if point == "ingest-before-rows":
        ingestion.record_instances = block
    elif point == "ingest-committed":
        ingestion.release = block
    with state.sessions() as db:
        ingestion.ingest(state.instances, db, state.settings.site, "crash-test",
                         drawn_then_stalled() if point == "ingest-drawing" else parsed, "test")


def _job(point: str) -> None:
    state = open_state(get_settings())

    def scratch_then_stalled(_inputs, _use_case, _load, out: Path, **_kwargs):
        (out / "partial.dcm").write_bytes(b"synthetic slice being written")
        block()

    if point == "job-scratch":
        runner.run_clinical_path = scratch_then_stalled
    elif point == "job-publishing":
        runner.record_instances = block
    Worker(state, lease_seconds=600).run_once()


if __name__ == "__main__":
    point = sys.argv[1]
    if point.startswith("ingest"):
        _ingest(point, [Path(p) for p in sys.argv[2:]])
    else:
        _job(point)
    print("FINISHED", flush=True)

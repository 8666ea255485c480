"""`digital-contrast batch ...`: synthesis over a cohort, from a manifest
(docs/batch-synthesis.md)."""

import csv
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from digital_contrast.cli.output import console, fail, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings

if TYPE_CHECKING:
    from digital_contrast.service import ServiceState
    from digital_contrast.store.tables import Batch

NAME = "batch"
app = typer.Typer(no_args_is_help=True, help="Synthesis over a cohort: manifests, batches, "
                                             "outcome tables.")
ACTOR = "cli:batch"
OUTCOME_FIELDS = ["case_id", "series_instance_uid", "outcome", "code", "job_id",
                  "output_series_instance_uid", "energy_kwh", "emissions_kg_co2e",
                  "avoided_kg_co2e", "energy_status"]


class CasesPerHour(ProgressColumn):
    """Finished cases per hour since this command started watching."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        done = task.completed - task.fields.get("first", 0)
        rate = done / elapsed * 3600 if elapsed > 1 and done > 0 else None
        return Text(f"{rate:,.0f} cases/h" if rate is not None else "- cases/h",
                    style="progress.data.speed")


@app.command("manifest")
@user_errors
def manifest_command(
    out: Annotated[Path, typer.Argument(help="The manifest file to write (JSON Lines).")],
    use_case: Annotated[str, typer.Option(help="The use case every case is run for.")],
    name: Annotated[str, typer.Option(help="The cohort's name.")],
    from_folder: Annotated[Path | None, typer.Option(
        help="A folder tree: one case per folder holding one series.")] = None,
    from_store: Annotated[bool, typer.Option(
        help="Every received, non-synthetic CT series of the site in the store.")] = False,
) -> None:
    """Write a batch manifest (version 1) from a folder tree or from the store."""
    from digital_contrast.batch_manifest import cases_from_folder_tree, write_manifest
    from digital_contrast.jobs.batch import manifest_cases_from_store, manifest_header
    from digital_contrast.usecases import load_use_case

    if (from_folder is None) == (not from_store):
        raise fail("MANIFEST_SOURCE_MISSING", "name one source: --from-folder DIR or "
                   "--from-store")
    load_use_case(use_case)  # USECASE_UNKNOWN
    out = out.resolve()
    if from_folder is not None:
        root = from_folder.resolve()
        if root != out.parent:
            raise fail("MANIFEST_OUTSIDE_TREE", "write a folder tree's manifest at its top: "
                       f"{root / out.name} (case folders are relative to the manifest)")
        count = write_manifest(out, manifest_header(name, use_case, "folder"),
                               cases_from_folder_tree(root))
    else:
        with service_state() as state:
            count = write_manifest(out, manifest_header(name, use_case, "store"),
                                   manifest_cases_from_store(state))
    console.print(f"{count} cases written to {out}", highlight=False)


@app.command("submit")
@user_errors
def submit_command(
    manifest_path: Annotated[Path, typer.Argument(metavar="MANIFEST",
                                                  help="A batch manifest (JSON Lines).")],
    wait: Annotated[bool, typer.Option(help="Watch until every case has an outcome, then "
                                            "write the outcome table.")] = True,
    out: Annotated[Path | None, typer.Option(help="Folder of the outcome table and summary "
                                                  "(default: the data folder's batches/<id>).")
                   ] = None,
    poll_s: Annotated[float, typer.Option(min=0.1, max=60.0, help="Seconds between progress "
                                                                  "reads.")] = 2.0,
) -> None:
    """Submit every case of MANIFEST not submitted yet (the same manifest resumes its batch;
    a finished case is never run again), then watch the batch with its rate and ETA. Ctrl-C
    stops watching; the submitted jobs go on."""
    from digital_contrast.batch_manifest import read_manifest
    from digital_contrast.jobs.batch import open_batch, progress, submit_cases

    manifest = read_manifest(manifest_path)  # checked whole before anything is written
    settings = get_settings()
    with service_state() as state:
        batch = open_batch(state, manifest, ACTOR)
        publish = _publisher(state)
        done = progress(state, batch)
        console.print(f"batch {batch.id} ({batch.name}): {batch.case_count} cases, "
                      f"{done.recorded} already submitted; executor {settings.executor}",
                      highlight=False)
        try:
            with _progress() as bar:
                task = bar.add_task("submitting", total=batch.case_count,
                                    completed=done.recorded, first=done.recorded)
                submit_cases(state, batch, manifest, ACTOR,
                             on_case=lambda: bar.advance(task), after_commit=publish)
            if wait:
                _watch(state, batch, poll_s)
        except KeyboardInterrupt:
            console.print("stopped; submit the same manifest again to resume (finished cases "
                          "are not run again)")
            raise typer.Exit(130) from None
        if wait:
            _report(state, batch, out)


@app.command("status")
@user_errors
def status_command(
    batch_id: Annotated[str, typer.Argument(help="The batch id `batch submit` printed.")],
    out: Annotated[Path | None, typer.Option(help="Also write the outcome table and summary "
                                                  "to this folder.")] = None,
) -> None:
    """Progress of a batch, and its outcome table on request."""
    from digital_contrast.jobs.batch import BatchError, progress
    from digital_contrast.store.batches import get_batch

    with service_state() as state:
        with state.sessions() as db:
            batch = get_batch(db, state.settings.site, batch_id)
            if batch is not None:
                db.expunge(batch)
        if batch is None:
            raise BatchError("BATCH_NOT_FOUND", "no batch with this id at this site")
        done = progress(state, batch)
        console.print(f"batch {batch.id} ({batch.name}): {done.finished}/{done.total} finished "
                      f"({done.succeeded} succeeded, {done.refused} refused, {done.failed} "
                      f"failed), {done.recorded - done.finished} running or queued, "
                      f"{done.total - done.recorded} not submitted", highlight=False)
        if out is not None:
            _report(state, batch, out)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    CasesPerHour(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console)


def _publisher(state: "ServiceState") -> Any:
    """After each case: hand new jobs to the broker under the Celery executor (the service's
    dispatcher would too, but a batch must not wait for it)."""
    if state.settings.executor != "celery":
        return lambda: None
    from digital_contrast.jobs.celery_executor import make_celery
    from digital_contrast.jobs.dispatch import celery_publisher, dispatch_pending

    publish = celery_publisher(make_celery(state.settings))
    return lambda: dispatch_pending(state.sessions, publish)


def _watch(state: "ServiceState", batch: "Batch", poll_s: float) -> None:
    from digital_contrast.jobs.batch import progress

    start = progress(state, batch).finished
    with _progress() as bar:
        task = bar.add_task("synthesizing", total=batch.case_count, completed=start,
                            first=start)
        while True:
            done = progress(state, batch)
            bar.update(task, completed=done.finished)
            if done.finished >= done.total:
                return
            threading.Event().wait(poll_s)


def _report(state: "ServiceState", batch: "Batch", out: Path | None) -> None:
    from digital_contrast.jobs.batch import outcomes, summary

    rows = outcomes(state, batch)
    result = summary(batch, rows)
    folder = (out or state.settings.data_dir / "batches" / batch.id).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    table_path, summary_path = folder / "outcomes.csv", folder / "summary.json"
    _write_atomically(table_path, lambda f: _write_csv(f, rows))
    _write_atomically(summary_path, lambda f: f.write(json.dumps(result, indent=2) + "\n"))
    table = Table(title=f"batch {batch.id}: {batch.name}")
    for column in ("cases", "succeeded", "refused", "failed", "pending"):
        table.add_column(column, justify="right")
    table.add_row(*(str(result[c]) for c in ("cases", "succeeded", "refused", "failed",
                                             "pending")))
    console.print(table)
    console.print(f"energy {result['energy_kwh']:.4f} kWh, {result['emissions_kg_co2e']:.4f} "
                  f"kg CO2e over {result['jobs_measured']} measured jobs; potential avoided "
                  f"{result['potential_avoided_kg_co2e']:.3f} kg CO2e (factor set estimate)",
                  highlight=False)
    console.print(f"outcome table {table_path}\nsummary {summary_path}", highlight=False)


def _write_csv(file: Any, rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(file, fieldnames=OUTCOME_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _write_atomically(path: Path, write: Any) -> None:
    partial = path.with_name(f".{path.name}.{time.monotonic_ns()}")
    with open(partial, "w", encoding="utf-8", newline="") as file:
        write(file)
    partial.replace(path)

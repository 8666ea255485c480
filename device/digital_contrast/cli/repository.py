"""`digital-contrast repository ...`: the CT repository, beside the clinical path."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from digital_contrast.cli.output import console, user_errors

if TYPE_CHECKING:  # imported where used: the command line starts fast
    from digital_contrast.repository.deid.deidentify import SafePrivate
    from digital_contrast.repository.deid.pseudonyms import SiteKey
    from digital_contrast.repository.ingest_runs import Dispatch
    from digital_contrast.repository.ingest_runs import Progress as RunProgress

NAME = "repository"
app = typer.Typer(no_args_is_help=True,
                  help="CT repository: de-identification at the site, for research (not the "
                       "clinical path).")


@app.command("ingest")
@user_errors
def repository_ingest(
    source: Annotated[Path, typer.Argument(help="A DICOM file or a folder of them (recursive).",
                                           exists=True)],
    site: Annotated[str, typer.Option(help="This site's id: names its key, e.g. site-a.")],
    out: Annotated[Path | None, typer.Option(
        help="Repository folder (default: <DC_DATA_DIR>/repository/<site>).")] = None,
    safe_private: Annotated[Path | None, typer.Option(
        help="YAML list of private elements to keep: {creator, group, element}.",
        exists=True, dir_okay=False)] = None,
    executor: Annotated[Literal["embedded", "celery"] | None, typer.Option(
        help="embedded: in this process; celery: one message per series to the Celery "
             "workers (DC_BROKER_URL), a run to follow with ingest-status (default: "
             "DC_EXECUTOR).")] = None,
) -> None:
    """De-identify every series under SOURCE by the PS3.15 basic profile with the research
    options, with UIDs, pseudonyms and date offsets keyed by the site's secret (created in the
    keys folder on first use; it never leaves the site), and record each series in the index
    (DC_REPOSITORY_DATABASE_URL). A series with an instance that cannot be de-identified
    safely is refused whole. With the Celery executor the run is planned here (headers only)
    and its series de-identified by the workers; a broker that is down leaves them pending
    (INGEST_BROKER_UNREACHABLE, then ingest-resume)."""
    from digital_contrast.config import get_settings
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.repository.deid.deidentify import Deidentifier
    from digital_contrast.repository.deid.pseudonyms import SiteKey
    from digital_contrast.repository.deid.safe_private import load_safe_private
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.ingest import ingest, site_secret_name
    from digital_contrast.service.process import prepare_service_process

    settings = get_settings()
    # Files private to the user, and library messages (pydicom quotes invalid values) scrubbed.
    prepare_service_process(settings)
    secret = keys_folder().secret(site_secret_name(site))
    target = out or settings.data_dir.resolve() / "repository" / site
    safe = load_safe_private(safe_private) if safe_private else frozenset()
    if (executor or settings.executor) == "celery":
        _ingest_on_celery(source, target, SiteKey(site, secret), safe)
        return
    with index_sessions(settings.repository_database_url) as index:
        report = ingest(source, target, Deidentifier(SiteKey(site, secret), safe_private=safe),
                        index)
    console.print(f"{report.written} instances of {report.series_written} series de-identified "
                  f"into {target} ({report.ms_per_instance:.1f} ms per instance)",
                  highlight=False)
    for code, count in sorted(report.refused_series.items()):
        console.print(f"refused {count} series: {code}", highlight=False)
    if report.not_dicom:
        console.print(f"skipped {report.not_dicom} files that are not DICOM instances",
                      highlight=False)


@app.command("proof")
@user_errors
def repository_proof() -> None:
    """Run the planted-PHI proof: the corpus from PS3.15 Table E.1-1 de-identified with a
    throwaway key (never a site's) and checked against the checker's own transcription of the
    table; per MIDI-B category, the actions checked and missed. Exit 1 on any miss."""
    import secrets

    from digital_contrast.repository.deid.deidentify import Deidentifier
    from digital_contrast.repository.deid.pseudonyms import SiteKey
    from digital_contrast.repository.proof.checker import check
    from digital_contrast.repository.proof.corpus import SAFE_LIST, planted_corpus
    from digital_contrast.repository.proof.table import load_table

    corpus = planted_corpus()
    deidentifier = Deidentifier(SiteKey("proof", secrets.token_bytes(32)),
                                safe_private=SAFE_LIST)
    result = check(corpus, [deidentifier.deidentify(i.dataset) for i in corpus])
    table = load_table()
    console.print(f"{len(corpus)} instances, {len(corpus[0].planted)} planted attributes each; "
                  f"checker's table: PS3.15 E.1-1 {table.edition} ({table.source})",
                  highlight=False)
    missed = {m.category for m in result.misses}
    for category, count in sorted(result.checked.items()):
        misses = sum(m.category == category for m in result.misses)
        console.print(f"  {category:<30} {count:>6} checked {misses:>5} missed", highlight=False)
    console.print(f"correct actions: {100 * result.correct_fraction:.2f} %", highlight=False)
    for miss in result.misses[:20]:
        console.print(f"  MISS {miss.category}: {miss.where}: expected {miss.expected}, "
                      f"got {miss.observed}", highlight=False)
    if missed:
        raise typer.Exit(1)


@app.command("rotate-key")
@user_errors
def repository_rotate_key(
    site: Annotated[str, typer.Option(help="The site whose de-identification key to rotate.")],
    break_linkage: Annotated[bool, typer.Option(
        "--break-linkage", help="Confirm: studies ingested after the rotation cannot be linked "
                                "to those before (new UIDs, pseudonyms and date offsets).")
    ] = False,
) -> None:
    """Retire the site's de-identification key (kept under secrets/retired/) and make a new
    one: only when the key may have leaked, since every pseudonym changes with it."""
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.repository.ingest import site_secret_name

    name = site_secret_name(site)
    if not break_linkage:
        console.print("nothing rotated: pass --break-linkage to confirm that pseudonyms before "
                      "and after the rotation will not be linkable", highlight=False)
        raise typer.Exit(1)
    folder = keys_folder()
    folder.rotate_secret(name)
    console.print(f"rotated secrets/{name}.key ({len(folder.retired_secrets(name))} retired); "
                  "tell the repository the date: pseudonyms before it are not linkable to "
                  "those after", highlight=False)


def _range(text: str | None) -> tuple[float | None, float | None]:
    if not text:
        return None, None
    low, _, high = text.partition("-")
    try:
        return (float(low) if low else None), (float(high) if high else None)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a range A-B (either end may be left out)"
                                 ) from None


@app.command("search")
@user_errors
def repository_search(
    phase: Annotated[list[str] | None, typer.Option(
        help="native, arterial, portal_venous, delayed, unknown (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="abdomen, chest, ... (repeatable).")
                      ] = None,
    kvp: Annotated[str | None, typer.Option(help="Tube voltage range A-B, e.g. 100-120.")
                   ] = None,
    thickness: Annotated[str | None, typer.Option(help="Slice thickness range in mm, A-B.")
                         ] = None,
    kernel: Annotated[list[str] | None, typer.Option(help="Reconstruction kernel.")] = None,
    site: Annotated[list[str] | None, typer.Option(help="Contributing site.")] = None,
    age_band: Annotated[list[str] | None, typer.Option(help="e.g. 60-69, 90+.")] = None,
    sex: Annotated[list[str] | None, typer.Option(help="M, F or O.")] = None,
    quality: Annotated[list[str] | None, typer.Option(help="complete, gaps, unknown.")] = None,
    pairs: Annotated[bool, typer.Option(
        "--pairs", help="Contrast series whose study also holds a native series.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to show (0: count only).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")
                       ] = False,
    save: Annotated[str | None, typer.Option(
        help="Save this search as a cohort of that name (a new version when its query or "
             "its members changed).")] = None,
    purpose: Annotated[str, typer.Option(help="What the saved cohort is for.")] = "",
) -> None:
    """Search the series index; with --save, save the search as a versioned cohort. Phase and
    region are header labels, not verified from the images; generated values (the scale
    test's) are named in each row."""
    import json

    from pydantic import ValidationError
    from rich.table import Table

    from digital_contrast.cli.output import fail
    from digital_contrast.config import get_settings
    from digital_contrast.repository.index.cohorts import save_cohort
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.index.search import SeriesQuery, search

    kvp_min, kvp_max = _range(kvp)
    thick_min, thick_max = _range(thickness)
    try:
        query = SeriesQuery(phase=phase or [], region=region or [], kvp_min=kvp_min,
                            kvp_max=kvp_max, thickness_min_mm=thick_min,
                            thickness_max_mm=thick_max, kernel=kernel or [], site=site or [],
                            age_band=age_band or [], sex=sex or [], quality=quality or [],
                            with_native_pair=pairs, limit=limit)
    except ValidationError as exc:
        raise fail("SEARCH_INVALID", "; ".join(
            ": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"])))
            for e in exc.errors())) from None
    with index_sessions(get_settings().repository_database_url) as index:
        with index() as session:
            count, rows = search(session, query)
        if save is not None:
            with index.begin() as session:
                saved = save_cohort(session, save, query, purpose)
    columns = ("site", "series_uid", "phase", "region", "kvp", "thickness_mm", "kernel",
               "age_band", "sex", "instances", "quality", "generated")
    if as_json:
        every = [c.name for c in type(rows[0]).__table__.columns if c.name != "id"] if rows else []
        for row in rows:
            typer.echo(json.dumps({c: getattr(row, c) for c in every}, default=str))
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if getattr(row, c) is None else str(getattr(row, c))
                            for c in columns))
        if rows:
            console.print(table)
    console.print(f"{count} series match (phase and region from headers, unverified)",
                  highlight=False)
    if save is not None:
        console.print(f"cohort {saved.name} version {saved.version}"
                      f"{'' if saved.created else ' (unchanged)'}: {saved.series_count} series, "
                      f"sha256 {saved.cohort_sha256}", highlight=False)


@app.command("cohorts")
@user_errors
def repository_cohorts() -> None:
    """The saved cohorts: newest version, members, hash and purpose of each."""
    from digital_contrast.config import get_settings
    from digital_contrast.repository.index.cohorts import cohorts
    from digital_contrast.repository.index.database import index_sessions

    with index_sessions(get_settings().repository_database_url) as index, \
            index() as session:
        for cohort in cohorts(session):
            console.print(f"{cohort.name} v{cohort.version}: {cohort.series_count} series, "
                          f"sha256 {cohort.cohort_sha256}, saved "
                          f"{cohort.created_at:%Y-%m-%d %H:%M} UTC: {cohort.purpose}",
                          highlight=False)


@app.command("export")
@user_errors
def repository_export(
    name: Annotated[str, typer.Argument(help="The saved cohort.")],
    use_case: Annotated[str, typer.Option(help="The use case the manifest is for.")],
    out: Annotated[Path, typer.Option(help="The batch manifest to write (JSON Lines).")],
    dua: Annotated[str, typer.Option(
        "--dua", help="The data use agreement the export is made under (its id).")],
    min_k: Annotated[int, typer.Option(
        help="Each combination of age band, sex, study year, scanner manufacturer and site "
             "must be shared by this many patients, or its series are suppressed.", min=2)
                     ] = 5,
    quasi_identifiers: Annotated[str, typer.Option(
        help="The quasi-identifiers k counts over, comma-separated.")
    ] = "age_band,sex,study_year,manufacturer,site",
    version: Annotated[int | None, typer.Option(help="Its version (default: newest).")] = None,
    files: Annotated[Path | None, typer.Option(
        help="The repository folder ingest wrote: each case names its series' folder there, "
             "relative to the manifest.", exists=True, file_okay=False)] = None,
) -> None:
    """Write a saved cohort version as a batch manifest (version 1): one case per series with
    its instance-set hash, the series of every quasi-identifier class smaller than k
    suppressed, the cohort's name, version, hash and the k-anonymity report in the
    provenance; the export is recorded, sealed, in the export log."""
    import datetime as dt
    import hashlib
    import json
    import os
    import tempfile

    from digital_contrast.batch_manifest import (
        FORMAT,
        VERSION,
        ManifestHeader,
        write_manifest,
    )
    from digital_contrast.config import get_settings
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.repository.errors import RepositoryError
    from digital_contrast.repository.index.cohorts import (
        cohort_version,
        export_rows,
        member_series,
    )
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.index.export_manifest import manifest_cases
    from digital_contrast.repository.index.exports import SECRET_NAME, record_export
    from digital_contrast.repository.index.kanonymity import QUASI_IDENTIFIERS, k_anonymise

    if not dua.strip():
        raise RepositoryError("EXPORT_INVALID", "name the data use agreement (--dua)")
    names = tuple(n.strip() for n in quasi_identifiers.split(",") if n.strip())
    if not names or set(names) - set(QUASI_IDENTIFIERS):
        raise RepositoryError("EXPORT_INVALID", "quasi-identifiers are some of "
                                                f"{', '.join(QUASI_IDENTIFIERS)}")
    out = out.resolve()
    if files is not None and out.parent not in (files.resolve(), *files.resolve().parents):
        raise RepositoryError("EXPORT_INVALID", "a batch manifest names folders inside its own "
                                                "folder: write it in the repository folder or "
                                                "a folder above it")
    secret = keys_folder().secret(SECRET_NAME)
    with index_sessions(get_settings().repository_database_url) as index:
        with index() as session:
            cohort, members = cohort_version(session, name, version)
            series = member_series(session, members)
            report = k_anonymise(export_rows(members, series), min_k, names)
            if not report.kept:
                raise RepositoryError("COHORT_EMPTY", f"cohort {cohort.name} v{cohort.version}: "
                                                      f"no series left to export at k = {min_k} "
                                                      f"({len(members)} before suppression)")
            kept = {(r.site, r.series_uid) for r in report.kept}
            header = ManifestHeader(
                format=FORMAT, version=VERSION, name=f"cohort {cohort.name} v{cohort.version}",
                use_case=use_case,
                created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                provenance={"cohort": cohort.name, "cohort_version": cohort.version,
                            "cohort_sha256": cohort.cohort_sha256, "purpose": cohort.purpose,
                            "data_use_agreement": dua.strip(),
                            "labels": "phase and region from headers, unverified",
                            "k_anonymity": json.dumps(report.as_dict())})
            cases = manifest_cases(members, series, kept, files, out.parent)
        handle, temporary = tempfile.mkstemp(dir=out.parent, suffix=".part")
        os.close(handle)
        try:
            written = write_manifest(Path(temporary), header, cases)
            digest = hashlib.sha256(Path(temporary).read_bytes()).hexdigest()
            with index.begin() as session:  # the record first: no export goes unrecorded
                record_export(session, secret, cohort=cohort.name,
                              cohort_version=cohort.version, cohort_sha256=cohort.cohort_sha256,
                              purpose=cohort.purpose, data_use_agreement=dua.strip()[:128],
                              use_case=use_case, min_k=min_k, series_exported=written,
                              series_suppressed=report.series_suppressed,
                              manifest_sha256=digest)
            os.replace(temporary, out)
        finally:
            Path(temporary).unlink(missing_ok=True)
    console.print(f"{written} cases of cohort {cohort.name} v{cohort.version} written to {out} "
                  f"(sha256 {digest}); k-anonymity at k = {min_k} over {', '.join(names)}: "
                  f"{report.classes} classes, "
                  f"smallest {report.smallest_class_before} patients before suppression, "
                  f"{report.series_suppressed} series of {report.patients_suppressed} patients "
                  "suppressed", highlight=False)


@app.command("exports")
@user_errors
def repository_exports() -> None:
    """The export log, and whether its seal chain is intact (exit 1 when not)."""
    from digital_contrast.config import get_settings
    from digital_contrast.keys.folder import keys_folder
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.index.exports import SECRET_NAME, verify_exports

    secret = keys_folder().secret(SECRET_NAME)
    with index_sessions(get_settings().repository_database_url) as index, \
            index() as session:
        records, problems = verify_exports(session, secret)
    for r in records:
        console.print(f"{r.id} {r.exported_at:%Y-%m-%d %H:%M} UTC {r.cohort} v{r.cohort_version} "
                      f"for {r.use_case} under {r.data_use_agreement}: {r.series_exported} "
                      f"series (k = {r.min_k}, {r.series_suppressed} suppressed), manifest "
                      f"{r.manifest_sha256[:16]}", highlight=False)
    for problem in problems:
        console.print(f"[bold red]BROKEN[/]: {problem}", highlight=False)
    console.print(f"{len(records)} exports; seal chain {'broken' if problems else 'intact'}",
                  highlight=False)
    if problems:
        raise typer.Exit(1)


def _ingest_on_celery(source: Path, out: Path, key: "SiteKey",
                      safe: "frozenset[SafePrivate]") -> None:
    """Plan the run (pass 1, here), then one message per pending series to the workers."""
    from digital_contrast.config import get_settings
    from digital_contrast.jobs.celery_executor import make_celery
    from digital_contrast.jobs.repository_ingest import ingest_publisher
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.ingest_runs import dispatch_items, plan_run, progress

    settings = get_settings()
    with index_sessions(settings.repository_database_url) as index:
        with index.begin() as session:
            run_id = plan_run(session, source, out, key, safe).id
        with index() as session:
            planned = progress(session, run_id)
        console.print(f"ingest run {run_id}: {planned.run.series} series "
                      f"({planned.run.files} instances) planned into {planned.run.out}",
                      highlight=False)
        _print_codes(planned)
        sent = dispatch_items(index, run_id, ingest_publisher(make_celery(settings)))
    _dispatched(run_id, sent)
    console.print(f"follow it: digital-contrast repository ingest-status {run_id} --wait",
                  highlight=False)


def _dispatched(run_id: int, sent: "Dispatch") -> None:
    from digital_contrast.repository.errors import RepositoryError

    console.print(f"{sent.published} series handed to the Celery workers", highlight=False)
    if sent.error is not None:
        raise RepositoryError("INGEST_BROKER_UNREACHABLE", (
            f"run {run_id}: {sent.waiting} series left pending, the broker is unreachable or "
            f"did not confirm ({sent.error}); when it is back: digital-contrast repository "
            f"ingest-resume {run_id}"))


def _print_codes(progress: "RunProgress") -> None:
    for (state, code), count in sorted(progress.codes.items()):
        console.print(f"{state} {count} series: {code}", highlight=False)
    if progress.run.not_dicom:
        console.print(f"skipped {progress.run.not_dicom} files that are not DICOM instances",
                      highlight=False)


def _print_progress(progress: "RunProgress") -> None:
    items, run = progress.items, progress.run
    console.print(f"ingest run {run.id} at {run.site}, created {run.created_at:%Y-%m-%d %H:%M} "
                  f"UTC, into {run.out}: {run.state}", highlight=False)
    console.print(f"{run.series} series: {items['done']} done, {items['pending']} pending, "
                  f"{items['refused']} refused, {items['failed']} failed", highlight=False)
    last = progress.last_finished
    elapsed = "" if last is None else \
        f", the last finished {(last - run.created_at).total_seconds():.1f} s after planning"
    console.print(f"{progress.written} instances written, {progress.ms_per_instance:.1f} ms "
                  f"per instance (workers' time){elapsed}", highlight=False)
    if progress.unpublished:
        console.print(f"{progress.unpublished} pending series not handed to the broker yet: "
                      f"digital-contrast repository ingest-resume {run.id}", highlight=False)
    _print_codes(progress)


@app.command("ingest-status")
@user_errors
def repository_ingest_status(
    run: Annotated[int, typer.Argument(help="The ingest run (its number).")],
    wait: Annotated[bool, typer.Option(
        "--wait", help="Follow the run until no series handed to the broker is pending.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --wait.",
                                            min=0.2)] = 2.0,
) -> None:
    """The progress of an ingest run through the Celery executor: series done, pending,
    refused (with their codes) and failed, instances written and the workers' time per
    instance. Exit 1 when series failed (ingest-resume retries them)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from digital_contrast.config import get_settings
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.ingest_runs import progress

    with index_sessions(get_settings().repository_database_url) as index:
        with index() as session:
            now = progress(session, run)
        # a series no broker confirmed has no message to wait for: ingest-resume first
        if wait and now.items["pending"] > now.unpublished:
            with Progress("run {task.fields[run]}", BarColumn(), MofNCompleteColumn(),
                          "series", TimeElapsedColumn(), console=console, transient=True,
                          disable=not console.is_terminal) as bar:  # a pipe: the summary only
                task = bar.add_task("ingest", total=now.run.series, run=run)
                while now.items["pending"] > now.unpublished:
                    bar.update(task, completed=now.run.series - now.items["pending"])
                    time.sleep(interval)
                    with index() as session:
                        now = progress(session, run)
    _print_progress(now)
    if now.items["failed"]:
        raise typer.Exit(1)


@app.command("ingest-resume")
@user_errors
def repository_ingest_resume(
    run: Annotated[int, typer.Argument(help="The ingest run (its number).")],
) -> None:
    """Hand the run's pending and failed series to the Celery workers again (a series already
    done is never done twice; one run again writes the same files)."""
    from digital_contrast.config import get_settings
    from digital_contrast.jobs.celery_executor import make_celery
    from digital_contrast.jobs.repository_ingest import ingest_publisher
    from digital_contrast.repository.index.database import index_sessions
    from digital_contrast.repository.ingest_runs import progress, resume

    settings = get_settings()
    with index_sessions(settings.repository_database_url) as index:
        with index() as session:
            before = progress(session, run)
        if not before.open:
            console.print(f"nothing to resume: no series of run {run} is pending or failed",
                          highlight=False)
            return
        sent = resume(index, run, ingest_publisher(make_celery(settings)))
    _dispatched(run, sent)

"""`digital-contrast deliveries ...`: the outbox of results pushed to destinations."""

from typing import Annotated

import typer

from digital_contrast.cli.output import console, user_errors
from digital_contrast.cli.state import service_state
from digital_contrast.config import get_settings

NAME = "deliveries"
app = typer.Typer(no_args_is_help=True, help="The outbox: results pushed to destinations.")


@app.command("list")
@user_errors
def deliveries_list(
    state: Annotated[str | None, typer.Option(help="pending | sending | delivered | "
                                                   "failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """The newest deliveries of the site, with their state and last error."""
    from digital_contrast.store.enums import DeliveryState
    from digital_contrast.store.outbox import list_deliveries

    wanted = DeliveryState(state) if state else None
    with service_state() as service, service.sessions() as db:
        rows = list_deliveries(db, get_settings().site, state=wanted, limit=limit)
        # One line each, whole ids first (`deliveries retry` takes them), for grep and people.
        for d in rows:
            due = (f" next {d.next_attempt_at:%Y-%m-%d %H:%M:%S}"
                   if d.state is DeliveryState.PENDING else "")
            console.print(f"{d.id}  job {d.job_id}  to {d.destination.name}  {d.state.value}"
                          f"  attempts {d.attempts}{due}  sent {d.instances_sent}"
                          + (f"  last error: {d.last_error}" if d.last_error else ""),
                          highlight=False, soft_wrap=True)
        if not rows:
            console.print("no deliveries")


@app.command("push")
@user_errors
def deliveries_push(job_id: str,
                    to: Annotated[str, typer.Option(help="Destination name.")]) -> None:
    """Queue the result of a succeeded job for a destination."""
    from digital_contrast.errors import DigitalContrastError
    from digital_contrast.store import JobState
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.destinations import get_destination
    from digital_contrast.store.jobs import get_job
    from digital_contrast.store.outbox import enqueue, result_series_uids

    site = get_settings().site
    with service_state() as service, service.sessions() as db:
        job = get_job(db, job_id, site=site)
        if job is None or job.state is not JobState.SUCCEEDED:
            raise DigitalContrastError("RESULT_NOT_READY",
                                       f"no succeeded job {job_id} at site {site}")
        delivery = enqueue(db, job, get_destination(db, site, to), result_series_uids(job),
                           "cli")
        append_audit(db, site, "cli", "delivery.request", "delivery", delivery.id, "success",
                     {"job_id": job.id, "destination": to})
        db.commit()
        console.print(f"delivery {delivery.id} queued ({len(delivery.series_uids)} series)")


@app.command("retry")
@user_errors
def deliveries_retry(delivery_id: str) -> None:
    """Queue a failed delivery again, with a fresh count of attempts."""
    from digital_contrast.store.audit import append_audit
    from digital_contrast.store.outbox import requeue

    site = get_settings().site
    with service_state() as service, service.sessions() as db:
        requeue(db, site, delivery_id)
        append_audit(db, site, "cli", "delivery.requeue", "delivery", delivery_id, "success",
                     {})
        db.commit()
    console.print(f"delivery {delivery_id} queued again")

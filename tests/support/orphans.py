"""What a data folder holds that nothing claims: the check behind every "no orphan" test."""

from pathlib import Path

from sqlalchemy import select

from digital_contrast.store import Instance, Job, JobState


def leftovers(data_dir: Path, sessions) -> list[str]:
    """Unclaimed files and folders under `data_dir`: instance files no row names, half-written
    copies, scratch folders, intents, half-made map folders and maps of jobs that did not
    succeed. Empty when the folder is clean."""
    with sessions() as db:
        claimed = set(db.scalars(select(Instance.file_path)))
        succeeded = set(db.scalars(select(Job.id).where(Job.state == JobState.SUCCEEDED)))
    instances = data_dir / "instances"
    found = [p.relative_to(instances).as_posix() for p in instances.glob("*/*/*")
             if p.relative_to(instances).as_posix() not in claimed]
    found += [f"work/{p.name}" for p in (data_dir / "work").glob("*")]
    found += [p.relative_to(data_dir).as_posix() for p in (data_dir / "journal").glob("*/*")]
    for job in (data_dir / "jobs").glob("*"):
        found += [f"jobs/{job.name}/{p.name}" for p in job.iterdir()
                  if p.name.startswith(".") or job.name not in succeeded]
    return sorted(found)

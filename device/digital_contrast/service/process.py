"""What every long-running process of the service does first (`serve` and its HTTP processes,
`worker`, `dimse`): files it creates are its user's alone (the database and its -wal/-shm,
instances, job files, MLflow's database), and its log lines are scrubbed JSON (or text) on
standard error."""

import os

from digital_contrast.config import Settings
from digital_contrast.logs import configure_logging

PRIVATE_UMASK = 0o077  # files 0600, folders 0700: the data folder holds patient data


def prepare_service_process(settings: Settings) -> None:
    os.umask(PRIVATE_UMASK)
    configure_logging(settings.log_format, settings.log_level)

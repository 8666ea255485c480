"""What the API's requests, the job workers and the operator commands share: the settings, the
database, the instance and artifact stores, this process's energy meter and the factor set."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digital_contrast.carbon.factors import FactorSet
from digital_contrast.carbon.meter import ScanMeter
from digital_contrast.config import Settings
from digital_contrast.store import InstanceStore
from digital_contrast.store.job_artifacts import JobArtifacts


@dataclass(frozen=True)
class ServiceState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    instances: InstanceStore
    work_dir: Path  # scratch folders of running jobs
    artifacts: JobArtifacts  # map previews and NIfTI of each job
    meter: ScanMeter  # energy of every job run in this process, one measured job per host
    factors: FactorSet  # the avoided-footprint factors in force

    @property
    def registry_uri(self) -> str:
        return self.settings.mlflow_uri

    @property
    def slot_lease_s(self) -> float:
        """How long the host's measurement slot is held without renewal."""
        return self.settings.job_lease_s

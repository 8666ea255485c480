"""Which files a `sources` glob of qms/software_items.yaml names: one rule for the item check
and the design record, so both assign a module to the same item."""

import glob
from pathlib import Path

from digital_contrast.config import REPO_ROOT


def source_files(pattern: str, repo: Path = REPO_ROOT) -> list[Path]:
    """The files (not folders) the glob, taken from the repository root, matches."""
    return [Path(p) for p in glob.glob(str(repo / pattern), recursive=True) if Path(p).is_file()]

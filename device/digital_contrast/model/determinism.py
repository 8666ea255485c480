"""Deterministic execution of torch code, with the process-wide settings put back after."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from monai.utils import set_determinism


@contextmanager
def deterministic(seed: int, num_threads: int) -> Iterator[None]:
    """Seeded RNGs, deterministic algorithms, fixed threads; process settings restored after."""
    # cuBLAS needs this before its first use to be deterministic; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.set_num_threads(num_threads)
    set_determinism(seed=seed)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2:]

"""Benchmark: wall time of operator commands that run no model, against the 1.5 s target, beside
the floor any Typer command line pays in the same run (an interpreter importing typer and rich).

    .venv/bin/python bench/cli_startup.py [--repeats 5]

Each command runs as a fresh process against a throwaway data folder; figures are medians.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5
CLI = [str(Path(sys.executable).with_name("digital-contrast"))]
COMMANDS = [["version"], ["keys", "list"], ["audit", "verify"], ["purge"], ["model", "list"]]
FLOOR = [sys.executable, "-c", "import typer, rich.console"]


def median_s(argv: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"DC_DATA_DIR": tmp}
        subprocess.run([*CLI, "keys", "list"], env=env, check=True, capture_output=True)
        floor = median_s(FLOOR, env, args.repeats)
        print(f"{'command':<16} {'median s':>9} {'/ floor':>8}  target {TARGET_S} s")
        print(f"{'(typer floor)':<16} {floor:9.2f} {1.0:8.1f}")
        for command in COMMANDS:
            seconds = median_s([*CLI, *command], env, args.repeats)
            verdict = "ok" if seconds <= TARGET_S else "OVER"
            print(f"{' '.join(command):<16} {seconds:9.2f} {seconds / floor:8.1f}  {verdict}")


if __name__ == "__main__":
    main()

"""Benchmark: property-based fuzz of the whole API, at least N requests per role (issue 18).

    .venv/bin/python bench/fuzz.py [--requests 5000] [--minutes 30] [--seed 18]

The service runs in this process on a loopback port (uvicorn, as in the test suite: its own
data folder, a tiny promoted model, one key per role). For each role, rounds of
schemathesis-generated cases (tests/support/fuzz.py: every operation of the live OpenAPI
document, positive and negative data, the role's key) are sent until the role has had
--requests requests or --minutes have passed for the whole run. Prints the requests per role
and mode, the outcomes by status and problem code, the negative data answered with 2xx, the
slowest operations by median latency, and every finding (a 5xx, a 4xx that is not a problem
document, a wrong authentication outcome) with a curl command to replay it. Exits 1 on any
finding, 2 when the time ran out before every role had its requests. Seeded: the same seed
sends the same requests. The machine is shared: read counts more than seconds.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "device"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per role (at least)")
    parser.add_argument("--minutes", type=float, default=30.0, help="for the whole run")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()

    from tests.support.signing import site_key_environment

    os.environ.update(site_key_environment())  # the registry checks the model's signature

    from digital_contrast.model.registry import ModelRegistry
    from digital_contrast.store import Role
    from tests.support.fuzz import MODES, Tally, fuzz_role, load_schema, operations
    from tests.support.service import live_server, make_settings, running_service

    started = time.monotonic()
    deadline = started + args.minutes * 60
    tallies: dict[Role, Tally] = {}
    with tempfile.TemporaryDirectory(prefix="dc-fuzz-") as tmp:
        registry_db = Path(tmp) / "registry" / "mlflow.db"
        registry_db.parent.mkdir()
        ModelRegistry(f"sqlite:///{registry_db}").names()
        settings = make_settings(Path(tmp) / "service", registry_db, max_upload_bytes=5_000_000)
        with running_service(settings) as service, live_server(service.app) as base:
            schema = load_schema(service)
            count = sum(1 for _ in operations(schema))
            print(f"{count} operations x {len(MODES)} modes (positive, negative), seed "
                  f"{args.seed}, target {args.requests} requests per role, bound "
                  f"{args.minutes:g} min")
            for role in Role:
                tally, round_ = Tally(), 0
                while tally.total < args.requests and time.monotonic() < deadline:
                    # Enough cases per operation and mode for what is left (operations whose
                    # cases run out early, e.g. no parameters, send fewer); next round, a new
                    # seed.
                    examples = max(10, math.ceil((args.requests - tally.total) / (count * 2)))
                    tally.add(fuzz_role(service, schema, base, role, examples=examples,
                                        seed_value=args.seed * 1000 + round_,
                                        deadline=deadline, skip_negative=tally.no_negative))
                    round_ += 1
                tallies[role] = tally
                print(f"  {role.value:<15} {tally.total:6d} requests in {round_} rounds "
                      f"({time.monotonic() - started:.0f} s so far)", flush=True)
    report(tallies, time.monotonic() - started, args.requests)


def report(tallies: dict, seconds: float, target: int) -> None:
    from tests.support.fuzz import Finding, Tally

    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    print(f"\n{total.total} requests in {seconds:.0f} s ({total.total / seconds:.0f}/s, "
          "one client, loopback)")
    print(f"{'role':<15} {'requests':>8} {'positive':>8} {'negative':>8} {'past auth':>9} "
          f"{'refused':>7} {'unrouted':>8} {'pre-auth':>8}")
    for role, tally in tallies.items():
        print(f"{role.value:<15} {tally.total:8d} {tally.requests['positive']:8d} "
              f"{tally.requests['negative']:8d} {tally.auth['past auth']:9d} "
              f"{tally.auth['refused']:7d} {tally.auth['unrouted']:8d} "
              f"{tally.auth['body refused before auth']:8d}")
    print("(pre-auth: a body that is not JSON, refused by FastAPI before any dependency)")
    print("\noutcomes, all roles:")
    for outcome, n in sorted(total.outcomes.items(), key=lambda item: (item[0][:3], -item[1])):
        print(f"  {outcome:<40} {n:7d}")
    fives = sum(n for outcome, n in total.outcomes.items() if outcome.startswith("5"))
    print(f"  {'5xx in all':<40} {fives:7d}")
    print(f"\nnegative data answered with 2xx ('accepted invalid'): "
          f"{sum(total.accepted_invalid.values())}")
    for what, n in total.accepted_invalid.most_common():
        print(f"  {what:<55} {n:5d}  e.g. {total.accepted_example[what][:160]}")
    print(f"operations with nothing to make invalid (positive only): {len(total.no_negative)}")
    every = [s for values in total.seconds.values() for s in values]
    print(f"\nlatency per request: median {statistics.median(every) * 1000:.1f} ms, "
          f"max {max(every) * 1000:.0f} ms; slowest operations by median:")
    slowest = sorted(total.seconds.items(), key=lambda item: -statistics.median(item[1]))[:8]
    for label, values in slowest:
        print(f"  {label:<75} {statistics.median(values) * 1000:7.1f} ms (n={len(values)})")
    print(f"\nfindings: {len(total.findings)}")
    kinds = Counter((f.operation, f.status, f.rule.split(" ")[0]) for f in total.findings)
    for (operation, status, rule), n in kinds.most_common():
        print(f"  {n:5d} x {operation} -> {status} ({rule} ...)")
    first: dict[tuple, Finding] = {}
    for finding in total.findings:  # one replay of each kind
        first.setdefault((finding.operation, finding.status, finding.rule.split(" ")[0]),
                         finding)
    for finding in first.values():
        print(f"  {finding}")
    short = [role.value for role, tally in tallies.items() if tally.total < target]
    if total.findings:
        sys.exit(1)
    if short:
        print(f"time ran out before {target} requests for: {', '.join(short)}")
        sys.exit(2)


if __name__ == "__main__":
    main()

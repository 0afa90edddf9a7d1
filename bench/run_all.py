"""Run the benchmarks one after another and print how long each took, and the total.

Each benchmark runs in its own interpreter with its output passed through as it comes. At the
end a table gives every benchmark's wall time, the 1-minute load average when it started and
ended (the machine may be shared: a high load slows every figure alike, which is why each
benchmark prints ratios against a baseline measured in the same run), and the total against
the budget of ``make bench``.

Exits 1 if any benchmark failed (non-zero exit, or killed after ``--timeout`` seconds); a
missed target is a printed figure, not a failure.

    .venv/bin/python bench/run_all.py bench/runner.py bench/store.py ...
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BUDGET_S = 300.0
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class Outcome:
    bench: str
    seconds: float
    load_before: float
    load_after: float
    status: str  # "ok", "exit N", "timeout"

    @property
    def failed(self) -> bool:
        return self.status != "ok"


def load() -> float:
    return os.getloadavg()[0]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the benchmark's process group (a benchmark stops its emulators on exit), then
    SIGKILL what is left after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_one(bench: str, timeout_s: float) -> Outcome:
    before = load()
    started = time.perf_counter()
    # Its own session, so that a timeout can stop the benchmark and whatever it spawned.
    proc = subprocess.Popen([sys.executable, bench], start_new_session=True)
    try:
        code = proc.wait(timeout=timeout_s)
        status = "ok" if code == 0 else f"exit {code}"
    except subprocess.TimeoutExpired:
        stop(proc)
        status = f"timeout after {timeout_s:.0f} s"
    except KeyboardInterrupt:
        stop(proc)
        raise
    return Outcome(bench, time.perf_counter() - started, before, load(), status)


def summary(outcomes: list[Outcome], budget_s: float) -> str:
    width = max(len(o.bench) for o in outcomes)
    lines = [
        f"\nbenchmark times ({os.cpu_count()} CPUs; load average, 1 min, at start -> end)",
        f"  {'benchmark':<{width}}  {'seconds':>8}  {'load':>12}  status",
    ]
    for o in outcomes:
        lines.append(
            f"  {o.bench:<{width}}  {o.seconds:8.1f}  {o.load_before:5.1f} -> {o.load_after:4.1f}  {o.status}"
        )
    total = sum(o.seconds for o in outcomes)
    verdict = "meets" if total < budget_s else "misses"
    lines.append(f"  {'total':<{width}}  {total:8.1f}  (budget < {budget_s:.0f} s: {verdict})")
    failed = [o.bench for o in outcomes if o.failed]
    if failed:
        lines.append(f"FAILED: {', '.join(failed)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="+", help="benchmark scripts, run in this order")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds before a benchmark is stopped (a failure)"
    )
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="the total's target, in seconds")
    args = parser.parse_args(argv)
    missing = [b for b in args.benches if not Path(b).is_file()]
    if missing:
        parser.error(f"no such benchmark file: {', '.join(missing)} (give paths such as bench/store.py)")
    outcomes: list[Outcome] = []
    for bench in args.benches:
        print(f"== {bench}", flush=True)
        outcome = run_one(bench, args.timeout)
        outcomes.append(outcome)
        print(f"== {bench}: {outcome.seconds:.1f} s, {outcome.status}", flush=True)
    print(summary(outcomes, args.budget), flush=True)
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

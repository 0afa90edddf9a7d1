"""Runner overhead: store operations per run and runs/s, against the same store work done bare.

Prints, for SQLite and the Firestore emulator:
- store operations per happy-path run (target: <= 3 writes including dedupe);
- runs/s through the runner with a no-op automation, beside two floors measured in the same run
  on the same run documents: the runner's own store operations done directly (the breaker read,
  the create, the lease-checked final write: target on Firestore <= 1.5x), and two plain writes
  (a create and a put), for scale. Ratios are medians of interleaved repetitions.

Sizes: 300 runs per repetition on SQLite, 75 on Firestore, 5 repetitions. The Firestore ratios
are per repetition, so the run count only sets how long each sample is. Run once each, one after
the other at load 14-18 on 2 cores: 150 runs gave 0.87x the same operations (1.71x two plain
writes), 75 runs 0.98x (1.54x): one ratio up, the other down, both on the same side of the
target. Most of this benchmark's time is the emulator's start.

Run: .venv/bin/python bench/runner.py [--firestore-runs 75] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from emulators import firestore_argv, start_emulator  # noqa: E402
from orchestra.automation import Analysis, Automation, RunContext  # noqa: E402
from orchestra.config import parse_config  # noqa: E402
from orchestra.models import Finding, RunStatus, Severity, TriggerKind  # noqa: E402
from orchestra.registry import Registry  # noqa: E402
from orchestra.runner import Runner, RunRequest  # noqa: E402
from orchestra.store.base import StateStore  # noqa: E402

CONFIG = parse_config("environments:\n  development: {automation_level: 1}\n", "bench")


class Noop(Automation):
    name = "noop"

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis(findings=[Finding(id="noop", severity=Severity.info, summary="ok")])


def through_runner(store: StateStore, n: int, tag: str) -> tuple[float, dict[str, float]]:
    registry = Registry({})
    registry.register(Noop)
    runner = Runner(CONFIG, store, registry=registry, heartbeat_in_background=False)
    store.ops.clear()
    start = time.perf_counter()
    for i in range(n):
        runner.submit(RunRequest(task="noop", trigger_kind=TriggerKind.event, trigger_id=f"{tag}-{i}"))
    elapsed = time.perf_counter() - start
    per_run = {k: v / n for k, v in store.ops.items()}
    return n / elapsed, per_run


def run_documents(store: StateStore) -> tuple[dict, dict]:
    """A run of the no-op automation as the runner stores it: when it is claimed (running, with
    a lease) and when it ends (succeeded, its finding). The floor writes these same documents, so
    the ratio is the runner's overhead, not a document-size difference (Firestore indexes every
    field of every write)."""
    registry = Registry({})
    registry.register(Noop)
    runner = Runner(CONFIG, store, registry=registry, heartbeat_in_background=False)
    ended = runner.submit(RunRequest(task="noop", trigger_kind=TriggerKind.event, trigger_id="sample")).run
    started = ended.model_copy(
        update={"status": RunStatus.running, "findings": [], "lease": runner._new_lease(ended.created_at)}
    )
    return started.model_dump(mode="json"), ended.model_dump(mode="json")


def direct_floor(store: StateStore, n: int, tag: str, docs: tuple[dict, dict] | None = None) -> float:
    started, ended = docs or run_documents(store)
    start = time.perf_counter()
    for i in range(n):
        doc_id = f"floor-{tag}-{i}"
        store.create("runs", doc_id, {**started, "id": doc_id})
        store.put("runs", doc_id, {**ended, "id": doc_id})
    return n / (time.perf_counter() - start)


def same_operations(store: StateStore, n: int, tag: str, docs: tuple[dict, dict]) -> float:
    """The store operations a run makes, done directly: the breaker read, the run's create and
    its lease-checked final write."""
    started, ended = docs
    owner = started["lease"]["owner"]
    start = time.perf_counter()
    for i in range(n):
        doc_id = f"same-{tag}-{i}"
        store.get("breakers", "automation:noop:development")
        store.create("runs", doc_id, {**started, "id": doc_id})
        store.update_if("runs", doc_id, {**ended, "id": doc_id}, expect={"lease.owner": owner})
    return n / (time.perf_counter() - start)


def warm_up(store: StateStore, timeout_s: float = 120) -> None:
    """The emulator's first calls can outlast a call's deadline: wait until a write succeeds."""
    from orchestra.errors import StoreUnavailable

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for i in range(20):
                store.put("warm_up", f"w{i}", {"id": f"w{i}"})
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise


def measure(label: str, store: StateStore, n: int, reps: int, target: float | None = None) -> None:
    per_run: dict[str, float] = {}
    # Interleaved repetitions, so a busy machine slows both alike; ratios are per repetition.
    rates, floors, sames = [], [], []
    docs = run_documents(store)
    for rep in range(reps):
        rate, per_run = through_runner(store, n, f"{label}-{rep}")
        rates.append(rate)
        floors.append(direct_floor(store, n, f"{label}-{rep}", docs))
        sames.append(same_operations(store, n, f"{label}-{rep}", docs))
    median = statistics.median
    ops = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_run.items()))
    print(f"{label:10} store ops per run: {ops}   (target: write <= 3)")
    writes_ratio = median(f / r for f, r in zip(floors, rates, strict=True))
    same_ratio = median(f / r for f, r in zip(sames, rates, strict=True))
    print(
        f"{label:10} runner {median(rates):8.1f} runs/s   2 plain writes {median(floors):8.1f} runs/s "
        f"({writes_ratio:5.2f}x)   same operations {median(sames):8.1f} runs/s ({same_ratio:5.2f}x)"
        + (
            f"   (target <= {target:.1f}x the same operations: {'meets' if same_ratio <= target else 'MISSES'})"
            if target
            else ""
        )
    )


def main(argv: list[str] | None = None) -> None:
    from orchestra.store.sqlite import SqliteStateStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-runs", type=int, default=300, help="runs per repetition on SQLite")
    parser.add_argument("--firestore-runs", type=int, default=75, help="runs per repetition on Firestore")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (medians)")
    args = parser.parse_args(argv)
    print(
        f"runs per repetition: SQLite {args.sqlite_runs}, Firestore {args.firestore_runs}; "
        f"{args.reps} repetitions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", SqliteStateStore(Path(tmp) / "bench.db"), args.sqlite_runs, args.reps)
        started = time.perf_counter()
        emulator = start_emulator("firestore", firestore_argv, project="orchestra-bench", log_dir=Path(tmp))
        try:
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.info.host_port
            from orchestra.store.firestore import FirestoreStateStore

            store = FirestoreStateStore(project="orchestra-bench", timeout_s=30.0)
            warm_up(store)
            print(
                f"Firestore emulator serving after {time.perf_counter() - started:.1f} s (not part of any figure)"
            )
            measure("firestore", store, args.firestore_runs, args.reps, target=1.5)
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()

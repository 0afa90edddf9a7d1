"""Runner overhead: store operations per run and runs/s, against the floor of the same writes.

Prints, for SQLite and the Firestore emulator:
- store operations per happy-path run (target: <= 3 writes including dedupe);
- runs/s through the runner with a no-op automation, beside the floor of doing the same
  writes (one create + one replace per run) directly on the store, as a ratio.
"""

from __future__ import annotations

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
from orchestra.models import Finding, Severity, TriggerKind  # noqa: E402
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


def direct_floor(store: StateStore, n: int, tag: str) -> float:
    doc = {"status": "running", "task": "noop", "created_at": "2026-01-01T00:00:00.000000Z"}
    start = time.perf_counter()
    for i in range(n):
        doc_id = f"floor-{tag}-{i}"
        store.create("runs", doc_id, doc)
        store.put("runs", doc_id, {**doc, "status": "succeeded"})
    return n / (time.perf_counter() - start)


def measure(label: str, store: StateStore, n: int) -> None:
    rates, floors = [], []
    per_run: dict[str, float] = {}
    for rep in range(3):
        rate, per_run = through_runner(store, n, f"{label}-{rep}")
        rates.append(rate)
        floors.append(direct_floor(store, n, f"{label}-{rep}"))
    rate, floor = statistics.median(rates), statistics.median(floors)
    ops = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_run.items()))
    print(f"{label:10} store ops per run: {ops}   (target: write <= 3)")
    print(
        f"{label:10} runner {rate:8.1f} runs/s   floor {floor:8.1f} runs/s   ratio {floor / rate:5.2f}x slower than bare writes"
    )


def main() -> None:
    from orchestra.store.sqlite import SqliteStateStore

    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", SqliteStateStore(Path(tmp) / "bench.db"), 300)
        emulator = start_emulator("firestore", firestore_argv, project="orchestra-bench", log_dir=Path(tmp))
        try:
            import os

            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.info.host_port
            from orchestra.store.firestore import FirestoreStateStore

            measure("firestore", FirestoreStateStore(project="orchestra-bench"), 150)
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()

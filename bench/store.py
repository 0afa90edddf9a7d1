"""State store benchmark: Firestore (emulator) against SQLite, and optimistic compare-and-set
against a transaction-based one under contention.

Starts its own Firestore emulator (needs the Google Cloud SDK, as the tests do) and stops it.
On a loaded machine the emulator can answer HTTP before its first calls meet a deadline: the
start is retried on a fresh port (as the tests' fixture does), then the benchmark waits until a
ping and a write succeed (retrying the ping, not sleeping a fixed time) and restarts the emulator
once if it never does. Calls get a 30 s deadline: a latency is measured, not a deadline.
Figures are ratios against a baseline measured in the same run:

- per-operation latency of the Firestore adapter / the SQLite adapter;
- contended compare-and-set wall time: a read-write transaction / the adapter's update-time
  precondition (what ``update_if`` does).

Sizes: 100 sequential operations per kind, 6 contended rounds. Run once each at load 13-18 on
2 cores, 200 and 100 operations gave Firestore latencies of 2-15 and 4-23 ms per operation
(query slowest, the rest 2-10 ms in both) and the contended ratio 51x and 37x: the load moves
these figures more than the count does. The per-operation ratios swing by 2-5x between any two
runs on a loaded machine, whatever the count: SQLite's operations take 0.01-0.2 ms, near the
clock's and the scheduler's noise; read them as orders of magnitude.

Run: .venv/bin/python bench/store.py [--ops 100] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from emulators import EmulatorError, EmulatorProcess, firestore_argv, start_emulator  # noqa: E402
from orchestra.errors import StoreUnavailable  # noqa: E402
from orchestra.store.base import StateStore, matches  # noqa: E402
from orchestra.store.firestore import FirestoreStateStore, from_document, to_document  # noqa: E402
from orchestra.store.sqlite import SqliteStateStore  # noqa: E402

OPS = 100
THREADS = 8
ROUNDS = 6
PROJECT = "bench"
CALL_TIMEOUT_S = 30.0
WARM_UP_S = 90.0
STARTS = 2


def wait_serving(store: FirestoreStateStore, timeout_s: float = WARM_UP_S) -> None:
    """Until a ping and a write succeed: the emulator's first calls can outlast their deadline."""
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            store.ping()
            store.put("warm_up", "w", {"id": "w"})
            return
        except StoreUnavailable as exc:
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"Firestore emulator at {os.environ.get('FIRESTORE_EMULATOR_HOST')} answered no "
                    f"ping and write within {timeout_s:.0f} s ({attempts} attempts): {exc}"
                ) from exc
            time.sleep(0.2)  # poll interval, as the emulator start's readiness poll


def start_serving(log_dir: Path) -> tuple[EmulatorProcess, FirestoreStateStore]:
    """A started emulator whose calls succeed, and a store on it; up to STARTS starts."""
    errors: list[str] = []
    for _ in range(STARTS):
        try:
            emulator = start_emulator("firestore", firestore_argv, project=PROJECT, log_dir=log_dir)
        except EmulatorError as exc:
            errors.append(str(exc))
            continue
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.info.host_port
        store = FirestoreStateStore(PROJECT, timeout_s=CALL_TIMEOUT_S)
        try:
            wait_serving(store)
        except EmulatorError as exc:
            errors.append(str(exc))
            store.close()
            emulator.stop()
            continue
        return emulator, store
    raise EmulatorError("\n".join(errors))


def per_op(store: StateStore, op: Callable[[StateStore, int], Any], ops: int) -> float:
    started = time.perf_counter()
    for i in range(ops):
        op(store, i)
    return (time.perf_counter() - started) / ops


def latency_table(sqlite: StateStore, firestore: StateStore, ops: int) -> list[tuple[str, float, float]]:
    doc = {"id": "x", "status": "running", "lease": {"owner": "w1"}, "n": 0, "created_at": "2026-01-05"}
    operations: list[tuple[str, Callable[[StateStore, int], Any]]] = [
        ("create", lambda s, i: s.create("bench", f"c{i}", {**doc, "id": f"c{i}", "n": i})),
        ("get", lambda s, i: s.get("bench", f"c{i}")),
        ("put", lambda s, i: s.put("bench", f"c{i}", {**doc, "id": f"c{i}", "n": i + 1})),
        (
            "update_if",
            lambda s, i: s.update_if("bench", f"c{i}", {**doc, "id": f"c{i}"}, expect={"lease.owner": "w1"}),
        ),
        (
            "query (eq, limit 20)",
            lambda s, i: s.query("bench", where=[("status", "==", "running")], limit=20),
        ),
        ("delete", lambda s, i: s.delete("bench", f"c{i}")),
    ]
    rows = []
    for name, op in operations:
        rows.append((name, per_op(sqlite, op, ops), per_op(firestore, op, ops)))
    return rows


def transactional_update_if(
    store: FirestoreStateStore, doc_id: str, data: dict[str, Any], expect: dict
) -> bool:
    """The straightforward alternative: compare and write inside a read-write transaction."""
    from google.cloud import firestore

    ref = store._client.collection("cas").document(doc_id)
    new_doc = to_document(data)

    @firestore.transactional
    def run(transaction: Any) -> bool:
        snap = ref.get(transaction=transaction)
        if not snap.exists or not matches(from_document(snap.to_dict() or {}), expect):
            return False
        transaction.set(ref, new_doc)
        return True

    return run(store._client.transaction())


def contended(
    update: Callable[[str, dict[str, Any], dict[str, Any]], bool], store: StateStore, rounds: int
) -> tuple[float, int]:
    """``rounds`` rounds of THREADS writers racing to move one document from version r to r+1.
    Returns (seconds per round, errors)."""
    times: list[float] = []
    errors = 0
    lock = threading.Lock()
    for r in range(rounds):
        doc_id = f"race-{r}"
        store.put("cas", doc_id, {"id": doc_id, "version": 0})
        barrier = threading.Barrier(THREADS)
        wins: list[bool] = []

        def writer(
            i: int, doc_id: str = doc_id, barrier: threading.Barrier = barrier, wins: list = wins
        ) -> None:
            nonlocal errors
            barrier.wait()
            try:
                won = update(doc_id, {"id": doc_id, "version": 1, "by": i}, {"version": 0})
            except Exception:  # noqa: BLE001 - counted: a benchmark reports failures, it does not stop
                with lock:
                    errors += 1
                return
            with lock:
                wins.append(won)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        times.append(time.perf_counter() - started)
        if wins.count(True) != 1 and errors == 0:
            raise AssertionError(f"round {r}: {wins.count(True)} winners")
    return statistics.median(times), errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=OPS, help="sequential operations per kind")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="contended compare-and-set rounds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        emulator, firestore = start_serving(Path(tmp))
        print(
            f"Firestore emulator serving after {time.perf_counter() - started:.1f} s (not part of any figure)"
        )
        try:
            sqlite = SqliteStateStore(Path(tmp) / "bench.db")

            print(f"Per-operation latency, {args.ops} sequential ops each (baseline: SQLite, same run)")
            print(f"{'operation':<22}{'sqlite ms':>11}{'firestore ms':>14}{'ratio':>8}")
            for name, lite, fire in latency_table(sqlite, firestore, args.ops):
                print(f"{name:<22}{lite * 1000:>11.3f}{fire * 1000:>14.3f}{fire / lite:>7.1f}x")

            print(
                f"\nContended compare-and-set: {THREADS} writers, one winner, median of {args.rounds} rounds"
            )
            optimistic, opt_errors = contended(
                lambda d, data, expect: firestore.update_if("cas", d, data, expect=expect),
                firestore,
                args.rounds,
            )
            transactional, txn_errors = contended(
                lambda d, data, expect: transactional_update_if(firestore, d, data, expect),
                firestore,
                args.rounds,
            )
            print(
                f"{'update-time precondition (adapter)':<40}{optimistic * 1000:>9.1f} ms  errors {opt_errors}"
            )
            print(
                f"{'read-write transaction (baseline)':<40}{transactional * 1000:>9.1f} ms  errors {txn_errors}"
            )
            print(f"transaction / precondition: {transactional / optimistic:.1f}x")
            sqlite.close()
            firestore.close()
        finally:
            emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

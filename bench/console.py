"""Console benchmark: the runs page over 10,000 runs in SQLite.

Figures are ratios against a baseline measured in the same run (the store query the page is
built on, ``list_runs(limit=50)``):

- first page of /runs rendered (HTTP through the WSGI app, session and all) / the bare query;
- a page 100 pages deep (reached through its cursor) / the first page: paging is by cursor, so a
  deep page costs what the first does;
- a filtered page (environment + trigger kind) / the first page.

It fails (exit 1) if a page takes a second or more: the console must stay interactive.

The 10,000 runs are stored a thousand per transaction (the same documents ``create_run``
writes, one commit per thousand instead of one per run): the seeding is not what is measured.

Run: .venv/bin/python bench/console.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestra.app import build_app
from orchestra.clock import SystemClock
from orchestra.config import parse_config
from orchestra.console.app import create_console
from orchestra.console.auth import LocalAuth
from orchestra.models import Finding, Mode, Run, RunStatus, Severity, TriggerKind
from orchestra.store.base import RUNS as RUNS_COLLECTION
from orchestra.store.base import Write

RUNS = 10_000
SEED_BATCH = 1_000
ROUNDS = 7
CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
  production: {automation_level: 1, protected: true}
"""


def best(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(config=parse_config(CONFIG, "bench"), store_url=f"sqlite:///{Path(tmp) / 'state.db'}")
        t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
        statuses = list(RunStatus)
        kinds = list(TriggerKind)
        batch: list[Write] = []
        for i in range(RUNS):
            created = t0 - dt.timedelta(minutes=i)
            run = Run(
                id=f"bench-{i:05d}",
                task=("performance", "cost", "workspace")[i % 3],
                trigger_kind=kinds[i % len(kinds)],
                trigger_id=f"trigger-{i}",
                environment=("development", "production")[i % 2],
                mode=Mode.analyze,
                automation_level=1,
                status=statuses[i % len(statuses)],
                created_at=created,
                updated_at=created,
                findings=[Finding(id="f", severity=Severity.low, summary=f"finding {i}", evidence={"i": i})],
            )
            batch.append(Write(RUNS_COLLECTION, run.id, run.model_dump(mode="json")))
            if len(batch) == SEED_BATCH or i == RUNS - 1:
                assert app.store.create_all(batch), "a seeded run already existed"
                batch = []
        auth = LocalAuth("user:bench", SystemClock())
        client = create_console(lambda: app, auth).test_client()
        assert client.get(f"/login?token={auth.issue_login_token()}").status_code == 303

        def page(url: str) -> Callable[[], object]:
            def go() -> object:
                response = client.get(url)
                assert response.status_code == 200, response.status_code
                return response

            return go

        deep = None
        for _ in range(100):
            deep = app.store.list_runs_page(limit=50, after=deep.next if deep else None)
        assert deep is not None and deep.next is not None
        query = best(lambda: app.store.list_runs(limit=50))
        first = best(page("/runs"))
        deep_s = best(page(f"/runs?after={deep.next}"))
        filtered = best(page("/runs?environment=production&trigger_kind=webhook"))
        app.close()
    print(f"runs in store: {RUNS}")
    print(f"first page / bare query:        {first / query:6.2f}x  (first page {first * 1000:.0f} ms)")
    print(f"page 101 / first page:          {deep_s / first:6.2f}x")
    print(f"filtered page / first page:     {filtered / first:6.2f}x")
    slowest = max(first, deep_s, filtered)
    if slowest >= 1.0:
        print(f"FAIL: a runs page took {slowest:.2f} s (must stay well under a second)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

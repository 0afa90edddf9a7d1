"""Continuous-mode overhead, as ratios against baselines measured in the same run (SQLite).

- idle tick: one controller tick with nine schedules and nothing due, against the floor of
  computing the nine schedules' latest slots with croniter (what a tick must do anyway);
- slot hand-off: runs/s through the controller (worker thread per run, liveness beats, logging)
  against calling ``runner.submit`` directly for the same requests;
- watch: one evaluation of four threshold rules over 3 h of one-minute samples per metric for
  one service, against reading the same CSV files.

Run: .venv/bin/python bench/continuous.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from croniter import croniter
from orchestra.automation import Analysis, Automation, RunContext
from orchestra.clock import FakeClock
from orchestra.config import parse_config
from orchestra.continuous import Controller, ControllerOptions, MetricsWatch, WatchSettings
from orchestra.metrics.files import FileMetricsSource
from orchestra.models import TriggerKind
from orchestra.registry import Registry
from orchestra.registry import registry as installed
from orchestra.runner import Runner, RunRequest
from orchestra.scheduling import configured_schedules
from orchestra.store.sqlite import SqliteStateStore

CONFIG = parse_config(
    """
environments:
  development: {automation_level: 1}
  staging: {automation_level: 1}
  production: {automation_level: 1}
thresholds:
  cpu: {metric: cpu, above: 70, for_minutes: 15, focus: cpu}
  memory: {metric: memory, above: 80, for_minutes: 10, focus: memory}
  latency_p95: {metric: latency_p95, above: 500, for_minutes: 5, focus: latency}
  error_rate: {metric: error_rate, above: 1, for_minutes: 5, focus: errors}
automations:
  performance: {schedule: "0 2 * * *"}
  workspace: {schedule: "0 3 * * 0"}
  deployment: {schedule: "*/30 * * * *", environments: [staging, production]}
  testing: {schedule: "0 4 * * *"}
  ai-services: {schedule: "0 5 * * *"}
  cost: {schedule: "0 6 * * *"}
  infrastructure: {schedule: "0 * * * *"}
""",
    "bench",
)


def make_registry() -> Registry:
    reg = Registry({})
    for task in installed.names():

        class Noop(Automation):
            name = task

            def analyze(self, ctx: RunContext) -> Analysis:
                return Analysis()

        reg.register(Noop)
    return reg


def best_rate(fn: Callable[[], int], repeats: int = 5) -> float:
    """Operations per second, best of ``repeats`` (the least disturbed measurement)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def bench_idle_tick(store: SqliteStateStore) -> tuple[float, float]:
    clock = FakeClock(dt.datetime(2026, 1, 5, 12, 10, tzinfo=dt.UTC))
    registry = make_registry()
    runner = Runner(CONFIG, store, clock=clock, registry=registry, heartbeat_in_background=False)
    schedules = configured_schedules(CONFIG, "development", registry.names()).schedules
    controller = Controller(
        runner, schedules, ControllerOptions(environment="development", recover_seconds=0), clock=clock
    )
    controller.tick()  # runs the due slots once; later ticks at the same instant find nothing
    n = 2000

    def ticks() -> int:
        for _ in range(n):
            assert controller.tick() == []
        return n

    crons = [s.cron for s in schedules]
    now = clock.now()

    def floor() -> int:
        for _ in range(n):
            for cron in crons:
                croniter(cron, now).get_prev(dt.datetime)
        return n

    return best_rate(ticks), best_rate(floor)


def bench_handoff(tmp: Path) -> tuple[float, float]:
    registry = make_registry()
    clock = FakeClock(dt.datetime(2026, 1, 5, 12, 10, tzinfo=dt.UTC))
    n = 150
    counter = iter(range(10**9))

    def requests() -> list[RunRequest]:
        batch = next(counter)
        return [
            RunRequest(task="cost", trigger_kind=TriggerKind.scheduled, trigger_id=f"b{batch}-{i}")
            for i in range(n)
        ]

    store = SqliteStateStore(tmp / "handoff.db")
    runner = Runner(CONFIG, store, clock=clock, registry=registry, heartbeat_in_background=False)
    controller = Controller(
        runner, [], ControllerOptions(environment="development", recover_seconds=0), clock=clock
    )

    def direct() -> int:
        for request in requests():
            runner.submit(request)
        return n

    def through_controller() -> int:
        for request in requests():
            controller._submit(request)
        return n

    return best_rate(through_controller, 3), best_rate(direct, 3)


def bench_watch(tmp: Path) -> tuple[float, float]:
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    paths = {}
    for name, value in (("cpu", 85.0), ("memory", 50.0), ("latency_p95", 300.0), ("error_rate", 0.2)):
        rows = ["timestamp,value"]
        rows += [f"{(start + dt.timedelta(minutes=i)).isoformat()},{value}" for i in range(180)]
        path = tmp / f"{name}.csv"
        path.write_text("\n".join(rows) + "\n")
        paths[name] = str(path)
    source = FileMetricsSource(paths)
    watch = MetricsWatch(CONFIG, "production", WatchSettings(reader=source, services=["api"]))
    now = start + dt.timedelta(minutes=179)
    n = 30

    def evaluate() -> int:
        for _ in range(n):
            assert len(watch.evaluate(now)) == 1
        return n

    def read_only() -> int:
        for _ in range(n):
            source.fetch("api", list(paths), start=now - dt.timedelta(hours=3), end=now)
        return n

    return best_rate(evaluate), best_rate(read_only)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tick, tick_floor = bench_idle_tick(SqliteStateStore(tmp / "tick.db"))
        handoff, direct = bench_handoff(tmp)
        watch, read = bench_watch(tmp)
    print("continuous mode (SQLite), best of repeated runs")
    print(
        f"  idle tick, 9 schedules:  {tick:10.0f} ticks/s  vs croniter floor {tick_floor:10.0f}/s  "
        f"ratio {tick / tick_floor:5.2f}"
    )
    print(
        f"  slot hand-off:           {handoff:10.0f} runs/s   vs runner.submit  {direct:10.0f}/s  "
        f"ratio {handoff / direct:5.2f}"
    )
    print(
        f"  watch, 4 rules x 180 samples: {watch:8.0f} evals/s vs reading the CSVs {read:8.0f}/s  "
        f"ratio {watch / read:5.2f}"
    )


if __name__ == "__main__":
    main()

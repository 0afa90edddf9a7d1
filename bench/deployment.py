#!/usr/bin/env python3
"""Deployment and testing automations: the hot paths, each against a baseline measured in the
same run (ratios above 1 mean orchestra is slower by that factor).

- JUnit parsing (line-numbered, DTD-refusing expat tree) vs ``xml.etree.ElementTree.fromstring``
  of the same 20,000-test report;
- flaky / slow / trend analysis of 30 stored runs x 2,000 tests vs one plain pass over the same
  results (counting failures per test);
- a deployment's record lifecycle on SQLite (request, approve, deploying, verifying, succeeded:
  each a compare-and-set write with history) vs the same number of plain ``put`` writes;
- window checks: ``next_opening`` (Mon-Thu window in Europe/Paris with a freeze) vs ``is_open``.

    .venv/bin/python bench/deployment.py
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from orchestra.automations.deployment.approvals import approve
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.settings import DeploymentSettings, EnvironmentPolicy, Freeze, Window
from orchestra.automations.deployment.state import DeploymentState, transition
from orchestra.automations.deployment.windows import is_open, next_opening
from orchestra.automations.testing.flaky import duration_trends, flaky_tests, slowest_tests
from orchestra.automations.testing.junit import parse_junit_bytes
from orchestra.automations.testing.results import SuiteRun, TestResult
from orchestra.automations.testing.settings import FlakyRules
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.store.sqlite import SqliteStateStore

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def report(name: str, ours: float, base: float, unit: str, count: int) -> None:
    print(
        f"{name:<34} orchestra {count / ours:>12,.0f} {unit}/s   baseline {count / base:>12,.0f} {unit}/s   "
        f"ratio {ours / base:5.2f}x"
    )


def junit_report(tests: int) -> bytes:
    rng = random.Random(1)
    cases = []
    for i in range(tests):
        body = ""
        if rng.random() < 0.02:
            body = f'<failure message="assert {i} == {i + 1}">Traceback line {i}\n  assert False</failure>'
        elif rng.random() < 0.01:
            body = '<skipped message="needs a database"/>'
        cases.append(
            f'<testcase classname="pkg.mod{i // 50}" name="test_{i}" time="{rng.random():.3f}">{body}</testcase>'
        )
    return (
        '<?xml version="1.0"?><testsuites><testsuite name="unit">'
        + "".join(cases)
        + "</testsuite></testsuites>"
    ).encode()


def bench_junit() -> None:
    data = junit_report(20_000)
    ours = best_of(lambda: parse_junit_bytes(data))
    base = best_of(lambda: ET.fromstring(data))
    report("JUnit parse (20k tests)", ours, base, "tests", 20_000)


def history(runs: int, tests: int) -> list[SuiteRun]:
    rng = random.Random(2)
    out = []
    for r in range(runs):
        results = [
            TestResult(
                id=f"pkg.mod{t // 50}::test_{t}",
                outcome="failed" if (t % 97 == 0 and rng.random() < 0.4) else "passed",
                duration_seconds=rng.random(),
            )
            for t in range(tests)
        ]
        out.append(
            SuiteRun(
                id=f"run-{r}",
                suite="unit",
                status="passed",
                reason="",
                revision=f"c{r // 2}",
                started_at=T0 + dt.timedelta(hours=r),
                finished_at=T0 + dt.timedelta(hours=r, minutes=5),
                duration_seconds=300 + rng.random() * 30,
                tests=results,
            )
        )
    return out


def bench_flaky() -> None:
    runs = history(30, 2_000)
    rules = FlakyRules()

    def ours() -> None:
        flaky_tests(runs, rules)
        slowest_tests(runs, 10)
        duration_trends(runs, 5)

    def base() -> None:
        failures: Counter[str] = Counter()
        for run in runs:
            for test in run.tests:
                if test.outcome == "failed":
                    failures[test.id] += 1

    report("flaky analysis (30 runs x 2k)", best_of(ours), best_of(base), "results", 60_000)


def bench_lifecycle() -> None:
    n = 200
    settings = DeploymentSettings(environments={"production": EnvironmentPolicy(requires_approval=True)})
    config = parse_config("environments: {development: {}, production: {}}", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStateStore(Path(tmp) / "bench.db")
        clock = FakeClock(T0)
        ids = RandomIds(3)

        def ours() -> None:
            for i in range(n):
                dep = request_deployment(
                    store,
                    clock,
                    ids,
                    environment=f"env{i}",
                    ref="refs/heads/main",
                    revision=f"{i:040x}",
                    repository="o/r",
                    requested_by="github:alice",
                    source_event=None,
                )
                dep = approve(store, clock, settings, dep.id, "user:bob", config=config)
                for state in (
                    DeploymentState.deploying,
                    DeploymentState.verifying,
                    DeploymentState.succeeded,
                ):
                    dep = transition(store, clock, dep, state, actor="run:bench")

        # request = create + (superseding scan: queries) ; approve = get + 1-2 writes; then 3 writes
        writes_per_deployment = 5

        def base() -> None:
            for i in range(n * writes_per_deployment):
                store.put("bench_plain", f"d{i}", {"id": f"d{i}", "state": "x", "n": i})

        ours_t = best_of(ours, repeat=1)
        base_t = best_of(base, repeat=1)
        store.close()
    report("deployment lifecycle (SQLite)", ours_t, base_t, "deploys", n)
    print(f"{'':<34} ({ours_t / n * 1000:.2f} ms per deployment, {writes_per_deployment} state changes each)")


def bench_windows() -> None:
    policy = EnvironmentPolicy(
        windows=[
            Window(days=["mon", "tue", "wed", "thu"], start="09:00", end="16:00", timezone="Europe/Paris")
        ],
        freezes=[Freeze(start=T0 + dt.timedelta(days=10), end=T0 + dt.timedelta(days=17))],
    )
    instants = [T0 + dt.timedelta(minutes=37 * i) for i in range(2_000)]
    ours = best_of(lambda: [next_opening(policy, t) for t in instants])
    base = best_of(lambda: [is_open(policy, t) for t in instants])
    report("window next_opening vs is_open", ours, base, "checks", len(instants))


def main() -> None:
    started = time.perf_counter()
    bench_junit()
    bench_flaky()
    bench_lifecycle()
    bench_windows()
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()

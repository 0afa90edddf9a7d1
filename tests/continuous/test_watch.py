"""Alert thresholds evaluated by the controller against metric series: one focused performance
run per breach episode, started exactly like the alert path would (focus + service)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from orchestra.clock import FakeClock
from orchestra.config import Config, ThresholdRule
from orchestra.continuous import (
    Breach,
    Controller,
    ControllerOptions,
    MetricsWatch,
    WatchSettings,
    evaluate_rule,
    watch_trigger_id,
)
from orchestra.metrics.base import make_series
from orchestra.metrics.files import FileMetricsSource
from orchestra.models import RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import Runner
from orchestra.store.base import StateStore

from tests.continuous.automations import calls

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CPU = ThresholdRule(metric="cpu", above=70, for_minutes=15, focus="cpu")


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def series(points: list[tuple[float, float]]):
    return make_series(
        "cpu", [int(minutes(m).timestamp() * 1000) for m, _ in points], [v for _, v in points], "test"
    )


def test_a_breach_needs_the_whole_duration_above_the_threshold() -> None:
    # Five-minute samples: 12:00 ... 12:15 above 70 -> 15 minutes of breach at 12:15.
    s = series([(-5, 50), (0, 75), (5, 80), (10, 90), (15, 72)])
    breach = evaluate_rule("cpu", CPU, "api", s, minutes(16), max_staleness=dt.timedelta(minutes=10))
    assert breach is not None
    assert breach.episode_start == minutes(0) and breach.last_value == 72 and not breach.open_start
    assert breach.trigger_id == "watch:cpu:api:2026-01-05T12:00:00Z"
    # One sample less: only ten minutes so far.
    assert (
        evaluate_rule(
            "cpu",
            CPU,
            "api",
            series([(-5, 50), (0, 75), (5, 80), (10, 90)]),
            minutes(11),
            max_staleness=dt.timedelta(minutes=10),
        )
        is None
    )


@pytest.mark.parametrize(
    "points",
    [
        [(0, 75), (5, 80), (10, 60), (15, 90)],  # dipped under: the episode restarted at 15
        [(0, 75), (5, 80), (10, float("nan")), (15, 90)],  # a missing value breaks the run too
        [(0, 75), (5, 80), (10, 90), (15, 70)],  # equal to the threshold is not above it
    ],
)
def test_the_run_above_the_threshold_must_be_unbroken(points) -> None:
    assert (
        evaluate_rule("cpu", CPU, "api", series(points), minutes(16), max_staleness=dt.timedelta(minutes=10))
        is None
    )


def test_stale_or_future_data_never_breaches() -> None:
    s = series([(0, 75), (5, 80), (10, 90), (15, 95)])
    assert evaluate_rule("cpu", CPU, "api", s, minutes(40), max_staleness=dt.timedelta(minutes=10)) is None
    # At 12:12 the 12:15 sample does not exist yet: only 10 minutes are known.
    assert evaluate_rule("cpu", CPU, "api", s, minutes(12), max_staleness=dt.timedelta(minutes=10)) is None


def test_a_zero_duration_rule_breaches_on_one_sample() -> None:
    # Configuration refuses for_minutes: 0; the evaluation's boundary still holds for it.
    rule = ThresholdRule.model_construct(
        metric="cpu", above=70, for_minutes=0, focus="cpu", environments=None
    )
    breach = evaluate_rule(
        "cpu", rule, "api", series([(0, 50), (5, 71)]), minutes(5), max_staleness=dt.timedelta(minutes=1)
    )
    assert breach is not None and breach.episode_start == minutes(5)


def write_csv(path: Path, start: dt.datetime, values: list[float], step_minutes: float = 1) -> None:
    rows = ["timestamp,value"]
    for i, v in enumerate(values):
        rows.append(f"{(start + dt.timedelta(minutes=i * step_minutes)).strftime('%Y-%m-%dT%H:%M:%SZ')},{v}")
    path.write_text("\n".join(rows) + "\n")


def watching_controller(
    config: Config,
    store: StateStore,
    registry: Registry,
    clock: FakeClock,
    paths: dict[str, str],
    owner: str,
) -> Controller:
    """A development controller with no schedules that watches the metric files for checkout."""
    runner = Runner(config, store, clock=clock, owner=owner, registry=registry, heartbeat_in_background=False)
    watch = MetricsWatch(
        config,
        "development",
        WatchSettings(reader=FileMetricsSource(paths), services=["checkout"], run_params={"metrics": paths}),
    )
    return Controller(
        runner, [], ControllerOptions(environment="development", recover_seconds=0), watch=watch, clock=clock
    )


@pytest.fixture
def watched(tmp_path: Path, controller_config: Config, test_registry: Registry, sqlite_store):
    cpu = tmp_path / "cpu.csv"
    latency = tmp_path / "latency.csv"
    # CPU: normal for 10 min, above 70 % from 12:10 on. Latency is always far above 500 ms, but
    # that rule only applies to production.
    write_csv(cpu, minutes(0), [40] * 10 + [85] * 50)
    write_csv(latency, minutes(0), [900] * 60)
    paths = {"cpu": str(cpu), "latency_p95": str(latency)}
    clock = FakeClock(minutes(20))
    controller = watching_controller(controller_config, sqlite_store, test_registry, clock, paths, "watcher")
    return controller, clock, paths, cpu


def test_one_episode_starts_one_focused_run(watched, workdir, sqlite_store) -> None:
    controller, clock, paths, _ = watched
    assert controller.tick() == []  # 12:20: ten minutes above, the rule wants fifteen
    clock.advance(minutes=1)
    assert controller.tick() == []  # 12:21: eleven minutes
    clock.advance(minutes=5)  # 12:26: 16 minutes above
    (started,) = controller.tick()
    run = started.run
    assert run.status == RunStatus.succeeded and run.task == "performance"
    assert run.trigger_kind == TriggerKind.alert
    assert (
        run.trigger_id
        == watch_trigger_id("cpu", "checkout", minutes(10))
        == "watch:cpu:checkout:2026-01-05T12:10:00Z"
    )
    assert run.params == {"metrics": paths, "focus": "cpu", "service": "checkout"}
    assert "cpu 85 > 70 since 2026-01-05T12:10:00Z" in run.source_event
    for _ in range(10):  # the episode goes on: no new run
        clock.advance(minutes=1)
        assert controller.tick() == []
    assert calls(workdir) == ["performance cpu checkout"]
    # The latency rule is production-only: no run for it in development.
    assert [r.trigger_id for r in sqlite_store.list_runs(limit=None)] == [run.trigger_id]


def test_a_new_episode_after_recovery_starts_a_new_run(watched, workdir) -> None:
    controller, clock, _, cpu = watched
    clock.advance(minutes=6)
    assert len(controller.tick()) == 1
    # CPU recovered at 12:40 and breached again from 12:45 to 13:09.
    write_csv(cpu, minutes(0), [40] * 10 + [85] * 30 + [50] * 5 + [90] * 25)
    clock.set(minutes(55))
    assert controller.tick() == []  # 10 minutes into the second episode
    clock.set(minutes(61))
    (second,) = controller.tick()
    assert second.run.trigger_id == "watch:cpu:checkout:2026-01-05T12:45:00Z"
    assert calls(workdir) == ["performance cpu checkout"] * 2


def test_another_replica_watching_the_same_episode_does_not_run_it_again(
    watched, controller_config, test_registry, sqlite_store, workdir
) -> None:
    controller, clock, paths, _ = watched
    clock.advance(minutes=6)
    controller.tick()
    replica = watching_controller(controller_config, sqlite_store, test_registry, clock, paths, "replica-2")
    (again,) = replica.tick()
    assert again.outcome.duplicate
    assert calls(workdir) == ["performance cpu checkout"]


def test_production_watch_includes_production_only_rules(controller_config, tmp_path) -> None:
    watch = MetricsWatch(
        controller_config, "production", WatchSettings(reader=FileMetricsSource({}), services=["checkout"])
    )
    assert set(watch.rules) == {"cpu", "latency_p95"}
    assert set(MetricsWatch(controller_config, "staging", watch.settings).rules) == {"cpu"}


def test_the_most_recently_started_episodes_are_remembered_when_memory_is_trimmed(
    controller_config: Config,
) -> None:
    watch = MetricsWatch(
        controller_config, "development", WatchSettings(reader=FileMetricsSource({}), services=["checkout"])
    )
    breaches = [
        Breach(
            rule="cpu",
            service="checkout",
            metric="cpu",
            threshold=70,
            for_minutes=15,
            episode_start=minutes(n),
            last_sample_at=minutes(n + 20),
            last_value=90,
        )
        for n in range(10_001)
    ]
    for breach in breaches:
        watch.mark_started(breach)
    recent = breaches[-5_000:]
    watch.evaluate = lambda now: recent  # type: ignore[method-assign]
    assert watch.new_breaches(minutes(20_000)) == []


def test_an_episode_longer_than_the_read_window_keeps_its_first_start(tmp_path, controller_config) -> None:
    cpu = tmp_path / "cpu.csv"
    write_csv(cpu, minutes(0), [90] * 300)  # five hours above
    watch = MetricsWatch(
        controller_config,
        "development",
        WatchSettings(reader=FileMetricsSource({"cpu": str(cpu)}), services=["api"], lookback_minutes=30),
    )
    first = watch.evaluate(minutes(20))
    assert [b.episode_start for b in first] == [minutes(0)]
    later = watch.evaluate(minutes(200))  # the window now starts at 12:50 + ...
    assert [b.episode_start for b in later] == [minutes(0)]
    assert later[0].open_start


class _BrokenReader:
    def describe(self) -> str:
        return "broken"

    def fetch(self, service, metrics, *, start=None, end=None):
        from orchestra.errors import TransientError

        raise TransientError(f"Cloud Monitoring unavailable for {service}")


def test_an_unreadable_service_does_not_stop_the_watch(controller_config, tmp_path, caplog) -> None:
    watch = MetricsWatch(
        controller_config, "development", WatchSettings(reader=_BrokenReader(), services=["a", "b"])
    )
    with caplog.at_level("WARNING", logger="orchestra.controller"):
        assert watch.evaluate(minutes(0)) == []
    assert "unavailable for a" in caplog.text and "unavailable for b" in caplog.text

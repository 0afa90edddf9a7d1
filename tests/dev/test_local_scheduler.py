"""The local scheduler publishes what Cloud Scheduler would, in the scheduled function's format."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import pytest
from orchestra.clock import FakeClock
from orchestra.devtopology import (
    LocalScheduler,
    ProcessSupervisor,
    parse_args,
    scheduled_message,
)
from orchestra.events.scheduled import parse_task
from orchestra.processes import group_alive
from orchestra.scheduling import Schedule, Slot

UTC = dt.UTC


def make(clock: FakeClock) -> tuple[LocalScheduler, list[Slot]]:
    published: list[Slot] = []

    def publish(slot: Slot) -> str:
        published.append(slot)
        return str(len(published))

    schedules = [
        Schedule("cost", "0 6 * * *", "development"),
        Schedule("deployment", "*/30 * * * *", "staging"),
    ]
    return LocalScheduler(schedules, publish, clock), published


def test_slots_before_start_are_not_published_and_each_slot_is_published_when_it_comes() -> None:
    clock = FakeClock(dt.datetime(2026, 1, 5, 5, 50, tzinfo=UTC))
    scheduler, published = make(clock)
    assert scheduler.run_due() == []  # 05:30 and yesterday's 06:00 passed before the start
    assert scheduler.seconds_to_next(clock.now(), cap=3600) == 600
    clock.advance(minutes=10)
    assert [(s.task, s.at) for s, _ in scheduler.run_due()] == [
        ("cost", dt.datetime(2026, 1, 5, 6, 0, tzinfo=UTC)),
        ("deployment", dt.datetime(2026, 1, 5, 6, 0, tzinfo=UTC)),
    ]
    assert scheduler.run_due() == []
    clock.advance(minutes=29, seconds=59)
    assert scheduler.run_due() == []
    clock.advance(seconds=1)
    assert [s.trigger_id for s, _ in scheduler.run_due()] == [
        "schedule:deployment:staging:2026-01-05T06:30:00Z"
    ]
    assert len(published) == 3


def test_after_a_pause_only_the_latest_missed_slot_is_published() -> None:
    clock = FakeClock(dt.datetime(2026, 1, 5, 5, 50, tzinfo=UTC))
    scheduler, published = make(clock)
    clock.advance(hours=5)  # a laptop asleep through ten deployment slots and one cost slot
    assert sorted(s.trigger_id for s, _ in scheduler.run_due()) == [
        "schedule:cost:development:2026-01-05T06:00:00Z",
        "schedule:deployment:staging:2026-01-05T10:30:00Z",
    ]


def test_the_message_is_what_the_scheduled_function_accepts() -> None:
    slot = Slot("cost", "production", dt.datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    data = json.loads(scheduled_message(slot, "analyze"))
    task = parse_task(data, {"origin": "orchestra-dev-scheduler"})
    assert (task.task, task.environment, task.mode, task.trigger_id) == (
        "cost",
        "production",
        "analyze",
        "schedule:cost:production:2026-01-05T06:00:00Z",
    )


def test_stop_all_kills_grandchildren_that_ignore_sigterm(tmp_path: Path) -> None:
    supervisor = ProcessSupervisor(tmp_path, echo=lambda line: None)
    # A shell that starts a grandchild ignoring SIGTERM, like gcloud's wrapper starting java.
    script = "trap '' TERM; sleep 60 & wait"
    child = supervisor.start(
        "stubborn",
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin"},
        url="",
        cwd=tmp_path,
        prefix_output=True,
    )
    deadline = time.monotonic() + 10
    while (
        len(subprocess.run(["pgrep", "-g", str(child.pgid)], capture_output=True, text=True).stdout.split())
        < 2
    ):
        assert time.monotonic() < deadline, "the grandchild did not start"
        time.sleep(0.05)
    supervisor.stop_all(grace_s=0.5)
    assert not group_alive(child.pgid)
    # The killed grandchild was reparented to init: it stays a zombie (state Z, nothing running)
    # until init reaps it, which takes its own time, so pgrep looks at every other state.
    running = subprocess.run(["pgrep", "-r", "R,S,D,T,t,I", "-g", str(child.pgid)], capture_output=True)
    assert running.returncode == 1, running.stdout


def test_argument_checks() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--max-delivery-attempts", "3"])
    with pytest.raises(SystemExit):
        parse_args(["--min-backoff", "30", "--max-backoff", "10"])
    options = parse_args(["--project", "p-1", "--run-mode", "apply"])
    assert options.project == "p-1" and options.run_mode == "apply" and options.root == Path.cwd().resolve()

"""`infrastructure`: hour-of-week profile on the real ELB request series, the warm-ahead schedule,
forecast safety, storing the schedule and setting min instances with rollback."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from orchestra.automations.infrastructure import InfrastructureAutomation
from orchestra.automations.infrastructure.engine import COLLECTION
from orchestra.automations.infrastructure.profile import build_schedule, demand_profile, slot_label
from orchestra.clock import FakeClock
from orchestra.errors import InputError
from orchestra.inputs import local_context
from orchestra.metrics.files import read_series
from orchestra.models import safe_doc_id
from orchestra.store.base import StateStore

from ..performance.helpers import REQUESTS, copy_yaml, csv_rows, make_ctx, write_csv

MONDAY_NOON = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)  # 2026-01-05 is a Monday


def test_profile_matches_a_plain_per_hour_percentile() -> None:
    series = read_series(REQUESTS, "request_count")
    profile = demand_profile(series, 90)
    buckets: dict[int, list[float]] = {}
    for line in csv_rows(REQUESTS):
        stamp, value = line.split(",")
        when = dt.datetime.fromisoformat(stamp)
        buckets.setdefault(when.weekday() * 24 + when.hour, []).append(float(value) / 300)
    assert len(buckets) == 168  # two full weeks: every hour of the week has its own samples
    for slot, values in buckets.items():
        assert profile.p_rps[slot] == pytest.approx(float(np.percentile(values, 90)))
        assert profile.samples[slot] == len(values)
    assert profile.basis == ["week"] * 168
    assert profile.peak_rps == pytest.approx(656 / 300)


def test_short_history_falls_back_to_the_daily_cycle() -> None:
    series = read_series(REQUESTS, "request_count")
    three_days = series.between(None, series.start_ms + 3 * 86_400_000 - 300_000)
    profile = demand_profile(three_days, 90)
    assert profile.basis.count("week") == 72 and profile.basis.count("day") == 96
    missing = profile.basis.index("day")
    same_hour = [s for s in range(168) if s % 24 == missing % 24 and profile.basis[s] == "week"]
    assert same_hour  # the fallback is the hour-of-day percentile across the days seen
    hod = three_days.values[((three_days.t_ms // 3_600_000) % 24) == missing % 24] / 300
    assert profile.p_rps[missing] == pytest.approx(float(np.percentile(hod, 90)))


def test_schedule_warms_ahead_and_floors_quiet_hours() -> None:
    profile = demand_profile(read_series(REQUESTS, "request_count"), 90)
    schedule = build_schedule(
        profile,
        capacity_rps=0.2,
        floor=0,
        quiet_fraction=0.4,
        warm_ahead_hours=1,
        headroom_percent=50,
        max_instances_cap=1000,
    )
    top = float(profile.p_rps.max())
    for slot in range(168):
        need = math.ceil(profile.p_rps[slot] / 0.2 - 1e-9)
        base = 0 if profile.p_rps[slot] <= 0.4 * top else need
        assert schedule.base[slot] == base
        # One hour ahead of a rise, the capacity of the next hour is already there.
        assert schedule.min_instances[slot] == max(schedule.base[slot], schedule.base[(slot + 1) % 168])
    assert any(schedule.quiet) and 0 in schedule.min_instances
    assert schedule.max_instances == math.ceil(656 / 300 * 1.5 / 0.2)


def test_sample_run_computes_and_would_store_the_schedule(sqlite_store: StateStore) -> None:
    automation = InfrastructureAutomation()
    analysis = automation.analyze(make_ctx(automation, sqlite_store, clock=FakeClock(MONDAY_NOON)))
    report = analysis.summary["services"][0]
    assert analysis.summary["source"].startswith("bundled sample service 'sample-api'")
    assert len(report["profile"]) == 168 and report["profile"][12]["at"] == "Mon 12:00"
    assert report["slot_now"] == 12 and report["decision"]["min_instances"] == report["schedule"][12]
    assert [a.kind for a in analysis.actions] == ["store-schedule"]  # the sample itself is never changed
    assert report["max_instances"] > 10
    assert any(f.id.endswith(":max-instances") for f in analysis.findings)


def _run(
    tmp_path: Path, sqlite_store: StateStore, **kw: object
) -> tuple[InfrastructureAutomation, object, object]:
    service_yaml = kw.pop("service_yaml", None) or copy_yaml(tmp_path)
    automation = InfrastructureAutomation()
    params = {
        "metrics": {"request_count": str(kw.pop("requests", REQUESTS))},
        "service_yaml": str(service_yaml),
    }
    params.update(kw.pop("params", {}))  # type: ignore[arg-type]
    settings = {"instance_capacity_rps": 0.25, "settle_seconds": 0, **kw.pop("settings", {})}  # type: ignore[dict-item]
    ctx = make_ctx(
        automation,
        sqlite_store,
        params=params,
        settings=settings,
        clock=kw.pop("clock", FakeClock(MONDAY_NOON)),
    )  # type: ignore[arg-type]
    return automation, ctx, automation.analyze(ctx)  # type: ignore[arg-type]


def test_apply_stores_schedule_and_sets_min_instances_with_rollback(
    tmp_path: Path, sqlite_store: StateStore
) -> None:
    service_yaml = copy_yaml(tmp_path)
    original = service_yaml.read_text()
    automation, ctx, analysis = _run(tmp_path, sqlite_store, service_yaml=service_yaml)
    store_action, scale_action = analysis.actions  # type: ignore[attr-defined]
    assert scale_action.kind == "set-scaling"
    wanted = analysis.summary["services"][0]["schedule"][12]  # type: ignore[attr-defined]
    assert scale_action.params["changes"]["min_instances"] == wanted
    for action in (store_action, scale_action):
        action.rollback = automation.prepare(ctx, action)  # type: ignore[arg-type]
        automation.apply(ctx, action)  # type: ignore[arg-type]
        assert automation.verify(ctx, action).ok  # type: ignore[arg-type]
    doc = sqlite_store.get(COLLECTION, safe_doc_id("sample-api"))
    assert doc is not None and doc["min_instances"][12] == wanted and len(doc["profile_rps"]) == 168
    annotations = yaml.safe_load(service_yaml.read_text())["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/minScale"] == str(wanted)
    assert int(annotations["autoscaling.knative.dev/maxScale"]) == doc["max_instances"]
    for action in (scale_action, store_action):
        automation.rollback(ctx, action)  # type: ignore[arg-type]
    assert service_yaml.read_text() == original
    assert sqlite_store.get(COLLECTION, safe_doc_id("sample-api")) is None


def test_stored_schedule_drives_runs_without_enough_history(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation, ctx, analysis = _run(tmp_path, sqlite_store)
    store_action = analysis.actions[0]  # type: ignore[attr-defined]
    store_action.rollback = automation.prepare(ctx, store_action)  # type: ignore[arg-type]
    automation.apply(ctx, store_action)  # type: ignore[arg-type]
    stored = sqlite_store.get(COLLECTION, "sample-api")
    assert stored is not None
    one_day = write_csv(tmp_path / "short.csv", csv_rows(REQUESTS)[:288])
    clock = FakeClock(MONDAY_NOON + dt.timedelta(hours=7))  # Mon 19:00
    _, _, later = _run(
        tmp_path, sqlite_store, requests=one_day, clock=clock, params={"service": "sample-api"}
    )
    report = later.summary["services"][0]  # type: ignore[attr-defined]
    assert report["schedule_origin"].startswith("stored schedule computed")
    assert [a.kind for a in later.actions] == ["set-scaling"]  # type: ignore[attr-defined]
    assert later.actions[0].params["changes"]["min_instances"] == stored["min_instances"][19]  # type: ignore[attr-defined]


def test_too_little_history_and_nothing_stored(tmp_path: Path, sqlite_store: StateStore) -> None:
    one_day = write_csv(tmp_path / "short.csv", csv_rows(REQUESTS)[:288])
    _, _, analysis = _run(tmp_path, sqlite_store, requests=one_day)
    assert analysis.actions == []  # type: ignore[attr-defined]
    (finding,) = analysis.findings  # type: ignore[attr-defined]
    assert "a schedule needs 3" in finding.summary


def test_never_lowers_on_a_forecast_while_demand_is_high(tmp_path: Path, sqlite_store: StateStore) -> None:
    # Four quiet days (1 request per 5 min) then a busy last hour (300 per 5 min).
    start = dt.datetime(2026, 1, 1, 0, 0)
    rows = [(f"{start + dt.timedelta(minutes=5 * i):%Y-%m-%d %H:%M:%S}", 1.0) for i in range(4 * 288)]
    rows += [
        (f"{start + dt.timedelta(minutes=5 * (4 * 288 + i)):%Y-%m-%d %H:%M:%S}", 300.0) for i in range(12)
    ]
    requests = write_csv(tmp_path / "requests.csv", rows)
    service_yaml = copy_yaml(tmp_path)
    service_yaml.write_text(
        service_yaml.read_text().replace(
            "maxScale: '10'", "maxScale: '10'\n        autoscaling.knative.dev/minScale: '6'"
        )
    )
    _, _, analysis = _run(
        tmp_path,
        sqlite_store,
        requests=requests,
        service_yaml=service_yaml,
        settings={"instance_capacity_rps": 0.5},
    )
    decision = analysis.summary["services"][0]["decision"]  # type: ignore[attr-defined]
    assert decision["current_min"] == 6 and decision["scheduled_min"] < 6
    assert decision["min_instances"] == 2 and "current demand needs 2" in decision["reason"]  # 1 req/s / 0.5
    scale = [a for a in analysis.actions if a.kind == "set-scaling"]  # type: ignore[attr-defined]
    assert scale[0].params["changes"]["min_instances"] == 2 and scale[0].risk == "medium"


def test_forecast_only_changes_nothing(tmp_path: Path, sqlite_store: StateStore) -> None:
    _, _, analysis = _run(tmp_path, sqlite_store, params={"forecast_only": True})
    assert analysis.actions == []  # type: ignore[attr-defined]
    assert "forecast-only" in analysis.summary["services"][0]["notes"][0]  # type: ignore[attr-defined]


def test_capacity_is_required_outside_the_sample(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation = InfrastructureAutomation()
    ctx = make_ctx(automation, sqlite_store, params={"metrics": {"request_count": str(REQUESTS)}})
    with pytest.raises(InputError, match="instance_capacity_rps"):
        automation.analyze(ctx)


def test_only_request_counts_are_accepted() -> None:
    with pytest.raises(ValueError, match="reads only request_count"):
        InfrastructureAutomation.Params.model_validate(
            {"metrics": {"cpu": str(REQUESTS)}}, context=local_context()
        )
    assert slot_label(0) == "Mon 00:00" and slot_label(167) == "Sun 23:00"

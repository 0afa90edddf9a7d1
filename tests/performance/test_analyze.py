"""`performance` end to end on the real series: findings, focus and environment rules,
apply -> verify -> rollback through the YAML actuator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from orchestra.automations.performance import PerformanceAutomation
from orchestra.clock import FakeClock
from orchestra.errors import InputError
from orchestra.inputs import local_context
from orchestra.metrics.files import read_series
from orchestra.store.base import StateStore

from .helpers import CPU_HIGH, CPU_LOW, copy_yaml, csv_rows, make_ctx, write_csv

EVIDENCE_KEYS = {"rule", "metric", "start", "end", "peak", "mean", "threshold"}


def test_without_files_the_bundled_sample_is_analysed(sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    analysis = automation.analyze(make_ctx(automation, sqlite_store))
    assert analysis.summary["source"].startswith("bundled sample service 'sample-api'")
    assert [f.evidence["start"] for f in analysis.findings] == [
        "2014-04-10T00:04:00Z",
        "2014-04-15T17:04:00Z",
        "2014-04-16T14:19:00Z",
    ]
    assert all(EVIDENCE_KEYS <= set(f.evidence) for f in analysis.findings)
    assert analysis.actions == []  # nothing to act on: the sample is read-only
    report = analysis.summary["services"][0]
    assert report["config_origin"].startswith("read from the bundled sample")
    assert [r["id"] for r in report["recommendations"]] == ["sample-api:cpu:vcpu"]
    assert analysis.summary["rules"]["latency_p95"]["skipped"] == "applies only in production"
    json.dumps(analysis.model_dump(mode="json"))  # the runner stores it as JSON


def test_latency_rule_only_in_production(tmp_path: Path, sqlite_store: StateStore) -> None:
    rows = [(f"2024-03-01 10:{m:02d}:00", 800.0) for m in range(0, 30)]
    latency = write_csv(tmp_path / "latency.csv", rows)
    automation = PerformanceAutomation()
    params = {"metrics": {"latency_p95": str(latency)}}
    dev = automation.analyze(make_ctx(automation, sqlite_store, params=params, environment="development"))
    assert dev.findings == []
    prod = automation.analyze(make_ctx(automation, sqlite_store, params=params, environment="production"))
    assert [f.evidence["rule"] for f in prod.findings] == ["latency_p95"]
    ev = prod.findings[0].evidence
    assert (ev["start"], ev["end"], ev["peak"], ev["mean"], ev["threshold"]) == (
        "2024-03-01T10:00:00Z",
        "2024-03-01T10:29:00Z",
        800.0,
        800.0,
        500.0,
    )


def test_focused_run_evaluates_only_its_rule(tmp_path: Path, sqlite_store: StateStore) -> None:
    errors = write_csv(tmp_path / "errors.csv", [(f"2024-03-01 10:{m:02d}:00", 5.0) for m in range(30)])
    automation = PerformanceAutomation()
    params = {"metrics": {"cpu": str(CPU_HIGH), "error_rate": str(errors)}}
    both = automation.analyze(make_ctx(automation, sqlite_store, params=params))
    assert {f.evidence["rule"] for f in both.findings} == {"cpu", "error_rate"}
    focused = automation.analyze(make_ctx(automation, sqlite_store, params={**params, "focus": "errors"}))
    assert {f.evidence["rule"] for f in focused.findings} == {"error_rate"}
    rules = focused.summary["rules"]
    assert rules["error_rate"]["evaluated"] and not rules["cpu"]["evaluated"]
    assert rules["cpu"]["skipped"] == "focused run (errors)"
    recs = focused.summary["services"][0]["recommendations"]
    assert [r["id"] for r in recs] == ["service:errors:investigate"] and recs[0]["changes"] == {}


def test_unreadable_file_is_rejected_when_params_are_validated(tmp_path: Path) -> None:
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("2014-04-10 00:04:00,1\n")
    with pytest.raises(InputError) as info:
        PerformanceAutomation.Params.model_validate(
            {"metrics": {"cpu": str(headerless)}}, context=local_context()
        )
    assert info.value.where == f"{headerless}:1"
    with pytest.raises(InputError, match="file not found"):
        PerformanceAutomation.Params.model_validate(
            {"metrics": {"cpu": str(tmp_path / "missing.csv")}}, context=local_context()
        )


def test_bad_row_fails_the_run_as_bad_input(tmp_path: Path) -> None:
    # The samples are read once, by the run: a bad row is the caller's input error there.
    bad = write_csv(tmp_path / "bad.csv", ["2014-04-10 00:04:00,1", "2014-04-10 00:09:00,oops"])
    with pytest.raises(InputError) as info:
        read_series(bad, "cpu")
    assert info.value.where == f"{bad}:3"


def _analysis_files(tmp_path: Path, rows: int = 2000) -> Path:
    # The first 2000 real samples end inside the first long episode (up to 2014-04-17).
    return write_csv(tmp_path / "cpu.csv", csv_rows(CPU_HIGH)[:rows])


def _append(path: Path, start_minute: int, values: list[float]) -> None:
    last = path.read_text().splitlines()[-1].split(",")[0]
    import datetime as dt

    base = dt.datetime.fromisoformat(last)
    lines = [
        f"{base + dt.timedelta(minutes=start_minute + 5 * i):%Y-%m-%d %H:%M:%S},{v}"
        for i, v in enumerate(values)
    ]
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


def _apply(
    automation: PerformanceAutomation, sqlite_store: StateStore, tmp_path: Path
) -> tuple[object, object, Path, str]:
    service_yaml = copy_yaml(tmp_path)
    original = service_yaml.read_text()
    cpu = _analysis_files(tmp_path)
    params = {"metrics": {"cpu": str(cpu)}, "service_yaml": str(service_yaml)}
    ctx = make_ctx(automation, sqlite_store, params=params, settings={"settle_seconds": 0})
    analysis = automation.analyze(ctx)
    assert [a.kind for a in analysis.actions] == ["set-resources"]
    action = analysis.actions[0]
    assert action.params["changes"] == {"cpu": 2} and action.params["previous"] == {"cpu": 1.0}
    action.rollback = automation.prepare(ctx, action)
    assert action.rollback["previous_text"] == original
    action.result = automation.apply(ctx, action)
    limits = yaml.safe_load(service_yaml.read_text())["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]["limits"]
    assert limits["cpu"] == "2"
    return ctx, action, service_yaml, original


def test_apply_verify_rollback_when_cpu_gets_worse(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    ctx, action, service_yaml, original = _apply(automation, sqlite_store, tmp_path)
    _append(tmp_path / "cpu.csv", 5, [99.5] * 12)  # after the change: hotter than before
    verification = automation.verify(ctx, action)  # type: ignore[arg-type]
    assert verification.outcome == "failed" and not verification.ok
    assert verification.evidence["checks"][0]["verdict"] == "worse"
    automation.rollback(ctx, action)  # type: ignore[arg-type]
    assert service_yaml.read_text() == original
    automation.rollback(ctx, action)  # type: ignore[arg-type]
    assert service_yaml.read_text() == original


def test_apply_verify_keeps_a_change_that_helped(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    ctx, action, service_yaml, original = _apply(automation, sqlite_store, tmp_path)
    _append(tmp_path / "cpu.csv", 5, [48.0, 47.5, 49.0, 46.0])
    verification = automation.verify(ctx, action)  # type: ignore[arg-type]
    assert verification.outcome == "passed" and verification.ok
    assert verification.evidence["checks"][0]["verdict"] == "better"
    assert service_yaml.read_text() != original


def test_verify_waits_for_the_settle_period(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    clock = FakeClock()
    service_yaml = copy_yaml(tmp_path)
    params = {"metrics": {"cpu": str(_analysis_files(tmp_path))}, "service_yaml": str(service_yaml)}
    ctx = make_ctx(automation, sqlite_store, params=params, settings={"settle_seconds": 300}, clock=clock)
    action = automation.analyze(ctx).actions[0]
    action.rollback = automation.prepare(ctx, action)
    automation.apply(ctx, action)
    before = clock.now()
    verification = automation.verify(ctx, action)
    assert (clock.now() - before).total_seconds() == 300
    # No samples after the change yet: not proven either way.
    assert (verification.outcome, verification.ok) == ("inconclusive", False)
    assert verification.evidence["checks"][0]["verdict"] == "inconclusive"


def test_prepare_refuses_when_the_service_changed_since_analysis(
    tmp_path: Path, sqlite_store: StateStore
) -> None:
    automation = PerformanceAutomation()
    service_yaml = copy_yaml(tmp_path)
    params = {"metrics": {"cpu": str(_analysis_files(tmp_path))}, "service_yaml": str(service_yaml)}
    ctx = make_ctx(automation, sqlite_store, params=params)
    action = automation.analyze(ctx).actions[0]
    service_yaml.write_text(
        service_yaml.read_text().replace("cpu: 1000m", "cpu: '4'").replace("memory: 512Mi", "memory: 2Gi")
    )
    with pytest.raises(InputError, match="changed since the analysis"):
        automation.prepare(ctx, action)


def test_rightsizing_action_on_quiet_real_series(tmp_path: Path, sqlite_store: StateStore) -> None:
    service_yaml = copy_yaml(tmp_path)
    service_yaml.write_text(
        service_yaml.read_text().replace("cpu: 1000m", "cpu: '4'").replace("memory: 512Mi", "memory: 2Gi")
    )
    automation = PerformanceAutomation()
    params = {"metrics": {"cpu": str(CPU_LOW)}, "service_yaml": str(service_yaml)}
    analysis = automation.analyze(make_ctx(automation, sqlite_store, params=params))
    assert analysis.findings == []
    (action,) = analysis.actions
    assert action.params["changes"] == {"cpu": 2} and action.risk == "medium"
    assert action.params["checks"][0]["kind"] == "stay-below"


def test_metric_files_take_the_service_name_from_the_target(tmp_path: Path, sqlite_store: StateStore) -> None:
    from .fakes import FakeServicesClient

    run_client = FakeServicesClient()
    automation = PerformanceAutomation(run_client=run_client)
    cases = [
        ({"service_yaml": str(copy_yaml(tmp_path))}, "sample-api"),
        ({"cloud_run": run_client.service.name}, run_client.service.name.rsplit("/", 1)[-1]),
        ({"service": "named", "cloud_run": run_client.service.name}, "named"),
    ]
    for target, expected in cases:
        ctx = make_ctx(automation, sqlite_store, params={"metrics": {"cpu": str(CPU_LOW)}, **target})
        assert automation.analyze(ctx).summary["services"][0]["service"] == expected

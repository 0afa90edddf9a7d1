"""Request-based or instance-based billing: the estimates, the decision and the analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from orchestra.automations.cost import BillingModeSettings, CloudRunPrices, CostAutomation
from orchestra.automations.cost.billing_mode import (
    ServiceShape,
    Usage,
    break_even_utilization,
    estimate,
    usage_from_series,
)
from orchestra.automations.cost.engine import sample_dir
from orchestra.automations.cost.waste import SECONDS_PER_MONTH
from orchestra.errors import InputError
from orchestra.metrics.base import make_series
from orchestra.models import Risk

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cost" / "billing_mode"
DAY = 86400.0
PRICES = CloudRunPrices()
SETTINGS = BillingModeSettings()


def shape(
    mode: str = "request", vcpu: float = 1.0, memory_gib: float = 0.5, min_instances: int = 0
) -> ServiceShape:
    return ServiceShape(vcpu, memory_gib, mode, min_instances, "test")  # type: ignore[arg-type]


def usage(utilization: float | None, *, instances: float = 2.0, rps: float = 0.0, days: float = 7.0) -> Usage:
    period = days * DAY
    instance_seconds = instances * period
    busy = None if utilization is None else utilization * instance_seconds
    return Usage(period, instance_seconds, busy, rps * period)


# Tier 1 list prices for 1 vCPU and 0.5 GiB, per instance-second.
REQUEST_RATE = 0.000024 + 0.5 * 0.0000025
INSTANCE_RATE = 0.000018 + 0.5 * 0.000002


def test_busy_instances_are_cheaper_instance_based() -> None:
    got = estimate("api", shape("request"), usage(0.95), PRICES, SETTINGS)

    instance_seconds = 2 * 7 * DAY
    assert got.outcome == "switch" and got.recommended == "instance"
    assert got.request_cost == pytest.approx(0.95 * instance_seconds * REQUEST_RATE)
    assert got.instance_cost == pytest.approx(instance_seconds * INSTANCE_RATE)
    assert got.utilization == pytest.approx(0.95)
    # Without request fee or minimum instances the break-even is the ratio of the two rates.
    assert got.break_even == pytest.approx(INSTANCE_RATE / REQUEST_RATE)
    saving = (0.95 * REQUEST_RATE - INSTANCE_RATE) * instance_seconds
    assert got.monthly_savings == pytest.approx(saving * SECONDS_PER_MONTH / (7 * DAY))
    assert got.risk == Risk.medium
    assert "switch from request-based to instance-based" in got.summary()
    # Min instances 0: the note says it still scales to zero.
    assert any("still scales to zero" in n for n in got.notes)


def test_sparse_traffic_is_cheaper_request_based() -> None:
    got = estimate("api", shape("instance"), usage(0.1, rps=1.0), PRICES, SETTINGS)

    instance_seconds = 2 * 7 * DAY
    requests = 7 * DAY
    assert got.outcome == "switch" and got.recommended == "request"
    assert got.request_cost == pytest.approx(0.1 * instance_seconds * REQUEST_RATE + requests / 1e6 * 0.40)
    assert got.instance_cost == pytest.approx(instance_seconds * INSTANCE_RATE)
    assert got.notes == []  # the scale-to-zero note is about instance-based billing only
    record = got.as_dict()
    assert record["current"] == "instance" and record["recommended"] == "request"
    assert record["estimates"]["request_based"] == pytest.approx(got.request_cost, abs=0.01)
    assert record["estimates"]["instance_based"] == pytest.approx(got.instance_cost, abs=0.01)
    assert record["break_even_utilization"] is not None and 0 < record["break_even_utilization"] < 1


def test_a_difference_within_the_margin_keeps_the_current_mode() -> None:
    # Utilization a little above break-even: instance-based is cheaper, by less than 10 %.
    u = INSTANCE_RATE / REQUEST_RATE * 1.05
    got = estimate("api", shape("request"), usage(u, instances=4), PRICES, SETTINGS)
    assert got.outcome == "keep" and got.recommended is None
    assert "within the 10% margin" in got.reason
    assert got.request_cost is not None and got.instance_cost is not None
    assert got.instance_cost < got.request_cost

    # The same load with a 2 % margin is worth switching.
    narrow = SETTINGS.model_copy(update={"margin": 0.02})
    assert estimate("api", shape("request"), usage(u, instances=4), PRICES, narrow).outcome == "switch"


def test_the_cheaper_current_mode_is_kept() -> None:
    got = estimate("api", shape("request"), usage(0.3), PRICES, SETTINGS)
    assert got.outcome == "keep" and got.monthly_savings == 0.0
    assert got.reason == "request-based billing is already the cheaper mode"


def test_unknown_utilization_is_no_action_with_a_note() -> None:
    got = estimate("api", shape("request"), usage(None), PRICES, SETTINGS)
    assert got.outcome == "unknown" and got.recommended is None
    assert got.request_cost is None and got.instance_cost is None
    assert "utilization unknown: no busy time" in got.reason
    assert "billable_instance_time" in got.reason  # says what to give
    assert "billing mode not assessed" in got.summary()


def test_too_short_a_history_is_not_judged() -> None:
    got = estimate("api", shape("request"), usage(0.95, days=0.5), PRICES, SETTINGS)
    assert got.outcome == "unknown" and "fewer than the 24 h needed" in got.reason


def test_savings_under_the_minimum_are_not_worth_a_change() -> None:
    got = estimate("api", shape("request"), usage(0.95, instances=0.01), PRICES, SETTINGS)
    assert got.outcome == "keep" and "min_monthly_savings" in got.reason


def test_less_than_one_vcpu_stays_request_based() -> None:
    got = estimate("api", shape("request", vcpu=0.5), usage(0.99), PRICES, SETTINGS)
    assert got.outcome == "keep" and "at least 1 vCPU" in got.reason


def test_idle_minimum_instances_count_at_the_idle_rate() -> None:
    # 2 instances, one kept by min instances: idle time is billed (cheaply) under request-based.
    got = estimate("api", shape("request", min_instances=1), usage(0.2), PRICES, SETTINGS)
    period = 7 * DAY
    idle_rate = 0.0000025 + 0.5 * 0.0000025
    idle_seconds = min(0.8 * 2 * period, 1 * period)
    assert got.request_cost == pytest.approx(0.2 * 2 * period * REQUEST_RATE + idle_seconds * idle_rate)


def test_break_even_accounts_for_the_request_fee_and_minimum_instances() -> None:
    rates = {"request": 2.0, "idle": 0.5, "instance": 1.0, "per_million": 1.0}
    # No fee, no minimum: 2u = 1.
    assert break_even_utilization(10.0, 0.0, 10.0, 0, rates) == pytest.approx(0.5)
    # A fee worth 0.2 per instance-second: 2u + 0.2 = 1.
    assert break_even_utilization(10.0, 2e6, 10.0, 0, rates) == pytest.approx(0.4)
    # One minimum instance of one, all its idle time billed at 0.5: 2u + 0.5(1 - u) = 1.
    assert break_even_utilization(10.0, 0.0, 10.0, 1, rates) == pytest.approx(1 / 3)
    # Request-based is cheaper even fully busy: no break-even.
    assert break_even_utilization(10.0, 0.0, 10.0, 0, {**rates, "instance": 3.0}) is None
    # Instance-based is cheaper even idle: break-even at zero.
    assert break_even_utilization(10.0, 2e7, 10.0, 0, rates) == 0.0


def series(name: str, values: list[float], step_s: int = 300) -> object:
    return make_series(name, [i * step_s * 1000 for i in range(len(values))], values, f"{name}.csv")


def test_usage_reads_busy_time_from_billable_time_only_while_request_based() -> None:
    given = {
        "instance_count": series("instance_count", [2, 2, 4, 4]),
        "billable_instance_time": series("billable_instance_time", [300, 300, 600, 600]),
        "request_count": series("request_count", [10, 20, 30, 40]),
    }
    request_based = usage_from_series(given, "request")  # type: ignore[arg-type]
    assert request_based.period_seconds == 1200
    assert request_based.instance_seconds == pytest.approx(3 * 1200)
    assert request_based.busy_seconds == pytest.approx(1800)
    assert request_based.requests == 100
    assert "billable_instance_time" in request_based.sources["busy_time"]

    # Instance-based, billable time is the instance lifetime: busy time is unknown.
    instance_based = usage_from_series(given, "instance")  # type: ignore[arg-type]
    assert instance_based.busy_seconds is None
    with_active = {**given, "active_instances": series("active_instances", [1, 1, 1, 1])}
    assert usage_from_series(with_active, "instance").busy_seconds == pytest.approx(1200)  # type: ignore[arg-type]
    # ... and without instance_count, billable time gives the instance time.
    only_billable = {k: v for k, v in with_active.items() if k != "instance_count"}
    assert usage_from_series(only_billable, "instance").instance_seconds == 1800  # type: ignore[arg-type]


def test_usage_with_busy_time_beyond_instance_time_is_unknown() -> None:
    given = {
        "instance_count": series("instance_count", [1, 1]),
        "billable_instance_time": series("billable_instance_time", [900, 900]),
    }
    got = usage_from_series(given, "request")  # type: ignore[arg-type]
    assert got.busy_seconds is None and "exceeds instance time" in got.notes[0]
    # A little over (100 ms rounding, start-up): busy all the time.
    close = {**given, "billable_instance_time": series("billable_instance_time", [310, 310])}
    assert usage_from_series(close, "request").busy_seconds == pytest.approx(600)  # type: ignore[arg-type]


# ----- the analysis, from the fixture files -----


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("busy-api", "sparse-api"):
        out[name] = tmp_path / f"{name}.yaml"
        shutil.copy(FIXTURES / f"{name}.yaml", out[name])
    return out


def metric_params(*names: str) -> dict[str, str]:
    return {
        f"{path.name.split('.')[0]}.{path.name.split('.')[1]}": str(path)
        for path in sorted(FIXTURES.glob("*.csv"))
        if path.name.split(".")[0] in names
    }


def analyze(make_context, services: list[dict], metrics: dict[str, str], **settings):
    ctx = make_context(
        CostAutomation,
        settings={"services": services, **settings},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": metrics},
    )
    return CostAutomation().analyze(ctx)


def test_analysis_recommends_each_service_its_cheaper_mode(make_context, manifests) -> None:
    services = [
        # The settings are stale; the service YAML is what counts.
        {
            "name": "busy-api",
            "vcpu": 1,
            "memory_gib": 0.5,
            "billing": "instance",
            "manifest": str(manifests["busy-api"]),
        },
        {"name": "sparse-api", "manifest": str(manifests["sparse-api"])},
        {"name": "quiet-api"},
    ]
    analysis = analyze(make_context, services, metric_params("busy-api", "sparse-api"))

    busy = next(f for f in analysis.findings if f.id == "billing-mode:busy-api")
    e = busy.evidence
    # busy-api: 2 vCPU, 1 GiB, min 1, 4.125 instances on average over 2 days, busy 90 %, 25 rps each.
    instance_seconds = 4.125 * 2 * DAY
    busy_seconds = 0.9 * instance_seconds
    request_rate = 2 * 0.000024 + 0.0000025
    request_cost = (
        busy_seconds * request_rate
        + min(instance_seconds - busy_seconds, 2 * DAY) * (2 * 0.0000025 + 0.0000025)
        + 25 * instance_seconds / 1e6 * 0.40
    )
    instance_cost = instance_seconds * (2 * 0.000018 + 0.000002)
    assert (e["current"], e["recommended"], e["outcome"]) == ("request", "instance", "switch")
    assert e["estimates"]["request_based"] == pytest.approx(request_cost, abs=0.01)
    assert e["estimates"]["instance_based"] == pytest.approx(instance_cost, abs=0.01)
    assert e["utilization"] == pytest.approx(0.9)
    # Below 75 % (the price ratio) because the request fee and the idle minimum count too:
    # u x B-rate + 1 day of one idle minimum instance + fee = instance cost.
    fee = 25 * instance_seconds / 1e6 * 0.40
    expected_break_even = (instance_cost - fee - 2 * DAY * 0.0000075) / (instance_seconds * request_rate)
    assert e["break_even_utilization"] == pytest.approx(expected_break_even, abs=1e-4)
    assert e["monthly_savings"] == pytest.approx(
        (request_cost - instance_cost) * SECONDS_PER_MONTH / (2 * DAY), abs=0.01
    )
    assert e["service_config"]["origin"].startswith("read from Cloud Run service YAML")
    assert any("settings say instance-based" in n for n in e["notes"])

    sparse = next(f for f in analysis.findings if f.id == "billing-mode:sparse-api")
    assert (sparse.evidence["current"], sparse.evidence["recommended"]) == ("instance", "request")
    assert sparse.evidence["utilization"] == pytest.approx(0.05)

    actions = {a.id: a for a in analysis.actions}
    switch = actions["set-billing-mode:busy-api"]
    assert switch.risk == Risk.medium and switch.kind == "set-billing-mode"
    assert switch.params["changes"] == {"cpu_idle": False}
    assert switch.params["previous"] == {"cpu_idle": True, "cpu": 2.0, "memory_mib": 1024, "min_instances": 1}
    assert busy.evidence["action"] == switch.id
    assert actions["set-billing-mode:sparse-api"].params["changes"] == {"cpu_idle": True}

    summary = analysis.summary
    assert (
        "quiet-api: no instance_count / active_instances / billable_instance_time series given"
        in " ".join(summary["notes"])
    )
    assert [m["service"] for m in summary["billing_modes"]] == ["busy-api", "sparse-api"]


def test_a_service_without_busy_time_gets_a_note_and_no_action(make_context, manifests) -> None:
    metrics = {"busy-api.instance_count": str(FIXTURES / "busy-api.instance_count.csv")}
    analysis = analyze(make_context, [{"name": "busy-api", "manifest": str(manifests["busy-api"])}], metrics)
    assert not analysis.actions
    assert not [f for f in analysis.findings if f.id.startswith("billing-mode:")]
    [record] = analysis.summary["billing_modes"]
    assert record["outcome"] == "unknown"
    assert any(n.startswith("busy-api: billing mode not assessed") for n in analysis.summary["notes"])


def test_without_a_target_the_recommendation_is_a_finding_only(make_context) -> None:
    services = [{"name": "busy-api", "vcpu": 2, "memory_gib": 1, "min_instances": 1}]
    analysis = analyze(make_context, services, metric_params("busy-api"))
    finding = next(f for f in analysis.findings if f.id == "billing-mode:busy-api")
    assert finding.evidence["action"] is None and "no target" in finding.evidence["why_no_action"]
    assert finding.evidence["service_config"]["origin"].startswith("automations.cost.settings")
    assert not analysis.actions


def test_billing_mode_can_be_switched_off(make_context, manifests) -> None:
    services = [{"name": "busy-api", "manifest": str(manifests["busy-api"])}]
    analysis = analyze(make_context, services, metric_params("busy-api"), billing_mode={"enabled": False})
    assert analysis.summary["billing_modes"] == [] and not analysis.actions


def test_an_unknown_metric_name_is_refused_with_the_accepted_ones(make_context) -> None:
    with pytest.raises(InputError, match="accepted: request_count, cpu, memory, instance_count"):
        analyze(
            make_context,
            [{"name": "busy-api"}],
            {"busy-api.instance_time": str(FIXTURES / "busy-api.instance_count.csv")},
        )


def test_a_service_whose_idle_minimum_instances_should_go_is_judged_afterwards(
    make_context, tmp_path
) -> None:
    # busy-api's usage, but hardly any traffic: the minimum instance goes first.
    quiet = tmp_path / "requests.csv"
    rows = (FIXTURES / "busy-api.request_count.csv").read_text().splitlines()
    quiet.write_text("\n".join([rows[0]] + [f"{row.split(',')[0]},0" for row in rows[1:]]) + "\n")
    metrics = {**metric_params("busy-api"), "busy-api.request_count": str(quiet)}
    services = [{"name": "busy-api", "vcpu": 2, "memory_gib": 1, "min_instances": 1}]
    analysis = analyze(make_context, services, metrics)
    assert [r["kind"] for r in analysis.summary["recommendations"]] == ["idle-min-instances"]
    assert analysis.summary["billing_modes"] == []
    assert any(
        "billing mode not assessed while its idle minimum instances" in n for n in analysis.summary["notes"]
    )


def test_usage_is_compared_over_the_time_every_series_covers() -> None:
    day = 288  # 5-minute samples
    given = {
        # two days of instances, the second day only of busy time
        "instance_count": series("instance_count", [2.0] * (2 * day)),
        "billable_instance_time": make_series(
            "billable_instance_time",
            [(day + i) * 300_000 for i in range(day)],
            [300.0] * day,
            "b.csv",
        ),
    }
    got = usage_from_series(given, "request")  # type: ignore[arg-type]
    assert got.period_seconds == pytest.approx(DAY)
    assert got.instance_seconds == pytest.approx(2 * DAY)
    assert got.busy_seconds == pytest.approx(DAY)
    assert "usage compared over the time all series cover" in got.notes[0]

    apart = {
        "instance_count": series("instance_count", [2.0] * 10),
        "billable_instance_time": make_series(
            "billable_instance_time", [10**9, 10**9 + 300_000], [1, 1], "b.csv"
        ),
    }
    disjoint = usage_from_series(apart, "request")  # type: ignore[arg-type]
    assert disjoint.instance_seconds is None and disjoint.busy_seconds is None
    verdict = estimate("api", shape("request"), disjoint, PRICES, SETTINGS)
    assert verdict.outcome == "unknown" and "do not overlap in time" in verdict.reason

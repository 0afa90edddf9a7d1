"""A deterministic, realistic Cloud Billing export with injected anomalies and a known answer.

Used for the bundled sample (``scripts/generate_billing_sample.py``), the precision / recall
tests and the benchmark. The same seed always gives byte-identical files.

What is in it: four projects with the services and SKU names of a real standard export, daily
costs with a weekly cycle (traffic-driven services drop at weekends), slow growth, per-row noise,
sustained-use credits on Compute Engine, ``rows_per_day`` rows per SKU and day (24 is the
export's hourly grain). Injected on top, recorded in the ground truth:

- ``anomalies``: one SKU of a project/service costs much more on a day (some incidents last
  several days); sized well above the default detection margins;
- ``decoys``: changes that must *not* be flagged: +15 % on a large series (under the relative
  margin) and a multiple of a small series that adds half the absolute margin.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# project -> env label, [(service, weekend factor, [(sku, base daily cost USD)])]
CATALOG: dict[str, tuple[str, list[tuple[str, float, list[tuple[str, float]]]]]] = {
    "shop-prod": (
        "prod",
        [
            (
                "Compute Engine",
                0.9,
                [
                    ("N2 Instance Core running in Americas", 180.0),
                    ("N2 Instance Ram running in Americas", 95.0),
                    ("SSD backed PD Capacity", 40.0),
                ],
            ),
            (
                "Cloud Run",
                0.6,
                [("CPU Allocation Time", 60.0), ("Memory Allocation Time", 18.0), ("Requests", 6.0)],
            ),
            (
                "Cloud SQL",
                1.0,
                [
                    ("Cloud SQL for PostgreSQL: Zonal - vCPU in Americas", 70.0),
                    ("Cloud SQL for PostgreSQL: Zonal - RAM in Americas", 30.0),
                ],
            ),
            ("Networking", 0.6, [("Network Internet Data Transfer Out from Americas to Americas", 35.0)]),
            ("Cloud Logging", 0.8, [("Log Storage cost", 12.0)]),
            (
                "Cloud Storage",
                1.0,
                [
                    ("Standard Storage US Multi-region", 20.0),
                    ("Download Worldwide Destinations (excluding Asia & Australia)", 9.0),
                ],
            ),
        ],
    ),
    "shop-staging": (
        "staging",
        [
            (
                "Compute Engine",
                1.0,
                [
                    ("N2 Instance Core running in Americas", 30.0),
                    ("N2 Instance Ram running in Americas", 15.0),
                ],
            ),
            ("Cloud Run", 0.5, [("CPU Allocation Time", 8.0), ("Memory Allocation Time", 3.0)]),
            ("Cloud SQL", 1.0, [("Cloud SQL for PostgreSQL: Zonal - vCPU in Americas", 20.0)]),
            ("Cloud Logging", 0.7, [("Log Storage cost", 2.0)]),
        ],
    ),
    "data-platform": (
        "prod",
        [
            (
                "BigQuery",
                0.3,
                [("Analysis", 220.0), ("Active Logical Storage", 45.0), ("Long Term Logical Storage", 12.0)],
            ),
            ("Dataflow", 0.5, [("vCPU Time Batch Iowa", 40.0), ("RAM Time Batch Iowa", 14.0)]),
            ("Cloud Pub/Sub", 0.7, [("Message Delivery Basic", 10.0)]),
            ("Cloud Storage", 1.0, [("Standard Storage US Multi-region", 55.0)]),
        ],
    ),
    "ml-research": (
        "research",
        [
            (
                "Vertex AI",
                0.4,
                [("Gemini 2.5 Flash Text Input", 25.0), ("Gemini 2.5 Flash Text Output", 40.0)],
            ),
            ("Compute Engine", 0.5, [("Nvidia Tesla T4 GPU running in Americas", 60.0)]),
            ("Cloud Storage", 1.0, [("Standard Storage US Multi-region", 15.0)]),
        ],
    ),
}

SUD_SKUS = ("N2 Instance Core", "N2 Instance Ram")
SUD_SHARE = 0.2
GROWTH_PER_DAY = 0.0015
ROW_SIGMA = 0.1
HEADER = [
    "billing_account_id",
    "service.description",
    "sku.description",
    "usage_start_time",
    "usage_end_time",
    "project.id",
    "labels",
    "cost",
    "currency",
    "credits",
]
ACCOUNT = "01A2B3-C4D5E6-F7A8B9"


@dataclass(frozen=True)
class Options:
    seed: int = 20250317
    start: dt.date = dt.date(2024, 12, 30)
    days: int = 78
    rows_per_day: int = 4
    copies: int = 1  # replicate the projects (suffix -02, -03 ...) to scale the file up
    anomalies: int = 10
    window_days: int = 28  # anomalies are placed where a full baseline exists
    relative_margin: float = 0.3
    absolute_margin: float = 25.0


def _projects(copies: int) -> list[tuple[str, str, list[tuple[str, float, list[tuple[str, float]]]]]]:
    out = []
    for copy in range(copies):
        for name, (env, services) in CATALOG.items():
            out.append((name if copy == 0 else f"{name}-{copy + 1:02d}", env, services))
    return out


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def base_daily(start: dt.date, days: int, weekend: float) -> np.ndarray:
    """Noise-free multiplier per day: growth x weekly cycle."""
    idx = np.arange(days)
    weekday = np.array([(start + dt.timedelta(days=int(i))).weekday() for i in idx])
    cycle = np.where(weekday >= 5, weekend, 1.0)
    return (1 + GROWTH_PER_DAY) ** idx * cycle


# The decoys placed in every export: (project, service, kind).
DECOYS: tuple[tuple[str, str, str], ...] = (
    ("shop-prod", "Compute Engine", "small-relative"),
    ("data-platform", "Cloud Storage", "small-relative"),
    ("shop-staging", "Cloud Logging", "tiny-absolute"),
    ("shop-staging", "Cloud Run", "tiny-absolute"),
)


def _net_factor(sku: str) -> float:
    """The share of a SKU's gross cost left after its credits."""
    return 1 - SUD_SHARE if sku.startswith(SUD_SKUS) else 1.0


@dataclass
class _Series:
    """One project's service: the gross daily cost of each SKU (a row per SKU, a column per day)."""

    project: str
    env: str
    service: str
    skus: list[str]
    costs: np.ndarray  # anomalies and decoys are injected here
    baseline: np.ndarray  # the costs before injection: what a detector should expect

    def expected_net(self, day: int) -> float:
        return float(sum(self.baseline[k, day] * _net_factor(s) for k, s in enumerate(self.skus)))


def generate(opts: Options) -> tuple[str, dict[str, Any]]:
    """Return (CSV text, ground truth)."""
    rng = np.random.Generator(np.random.PCG64(opts.seed))
    plan = _plan(opts)
    # (series index, day) already changed, with a quiet day on either side of each
    taken: set[tuple[int, int]] = set()
    anomalies = _inject_anomalies(plan, opts, rng, taken)
    decoys = [
        _inject_decoy(plan, opts, rng, taken, project, service, kind) for project, service, kind in DECOYS
    ]
    text = _export_csv(plan, opts, rng)
    truth: dict[str, Any] = {
        "seed": opts.seed,
        "anomalies": sorted(anomalies, key=_truth_order),
        "decoys": sorted(decoys, key=_truth_order),
        "period": {
            "start": opts.start.isoformat(),
            "end": (opts.start + dt.timedelta(days=opts.days - 1)).isoformat(),
            "days": opts.days,
            "rows_per_day": opts.rows_per_day,
        },
        "month_expected_net": _month_expected(opts),
    }
    return text, truth


def _truth_order(entry: dict[str, Any]) -> tuple[str, str, str]:
    return entry["date"], entry["project"], entry["service"]


def _plan(opts: Options) -> list[_Series]:
    """The noise-free daily costs of every project's services."""
    plan: list[_Series] = []
    for project, env, services in _projects(opts.copies):
        for service, weekend, skus in services:
            mult = base_daily(opts.start, opts.days, weekend)
            costs = np.array([[base * m for m in mult] for _, base in skus])
            plan.append(_Series(project, env, service, [s for s, _ in skus], costs, costs.copy()))
    return plan


def _inject_anomalies(
    plan: list[_Series], opts: Options, rng: np.random.Generator, taken: set[tuple[int, int]]
) -> list[dict[str, Any]]:
    """Raises one SKU of a series on a day well above the margins; the first incident lasts three days.

    Only the first copy's projects get anomalies, so the ground truth stays readable.
    """
    found: list[dict[str, Any]] = []
    eligible = [i for i, series in enumerate(plan) if series.project in CATALOG]
    placed = 0
    while placed < opts.anomalies:
        i = int(rng.choice(eligible))
        length = 3 if placed == 0 else 1  # one multi-day incident
        day = int(rng.integers(opts.window_days, opts.days - length + 1))
        if any(
            (i, d) in taken or (i, d - 1) in taken or (i, d + 1) in taken for d in range(day, day + length)
        ):
            continue
        series = plan[i]
        k = int(rng.integers(0, len(series.skus)))
        factor = float(rng.uniform(2.5, 6.0))
        for d in range(day, day + length):
            expected = series.expected_net(d)
            extra_net = factor * max(opts.absolute_margin, opts.relative_margin * expected)
            series.costs[k, d] += extra_net / _net_factor(series.skus[k])
            taken.add((i, d))
            found.append(
                {
                    "date": (opts.start + dt.timedelta(days=d)).isoformat(),
                    "project": series.project,
                    "service": series.service,
                    "sku": series.skus[k],
                    "extra_net_cost": round(extra_net, 2),
                    "expected_net_cost": round(expected, 2),
                }
            )
        placed += 1
    return found


def _inject_decoy(
    plan: list[_Series],
    opts: Options,
    rng: np.random.Generator,
    taken: set[tuple[int, int]],
    project: str,
    service: str,
    kind: str,
) -> dict[str, Any]:
    """A change that must stay below the margins: +15 % (``small-relative``), or a large relative
    jump that adds only half the absolute margin (``tiny-absolute``)."""
    i = next(n for n, series in enumerate(plan) if series.project == project and series.service == service)
    while True:
        day = int(rng.integers(opts.window_days, opts.days))
        if all((i, d) not in taken for d in (day - 1, day, day + 1)):
            break
    taken.add((i, day))
    series = plan[i]
    if kind == "small-relative":
        series.costs[:, day] *= 1.15
    else:
        series.costs[:, day] *= 1 + 0.5 * opts.absolute_margin / max(series.expected_net(day), 1e-9)
    return {
        "date": (opts.start + dt.timedelta(days=day)).isoformat(),
        "project": project,
        "service": service,
        "kind": kind,
        "expected_net_cost": round(series.expected_net(day), 2),
    }


def _periods(opts: Options) -> list[list[tuple[str, str]]]:
    """Per day, the (usage_start_time, usage_end_time) of each of its rows."""
    per = opts.rows_per_day
    hours = 24 // per
    stamps = []
    for d in range(opts.days):
        day0 = dt.datetime.combine(opts.start + dt.timedelta(days=d), dt.time(), tzinfo=dt.UTC)
        stamps.append(
            [
                (_ts(day0 + dt.timedelta(hours=h * hours)), _ts(day0 + dt.timedelta(hours=(h + 1) * hours)))
                for h in range(per)
            ]
        )
    return stamps


def _diurnal_shape(per: int) -> np.ndarray:
    """The daily shape of traffic-driven usage over ``per`` rows, normalised to 1 over the day."""
    shape = 1 + 0.35 * np.sin((np.arange(per) + 0.5) / per * 2 * np.pi - np.pi / 2)
    return shape / shape.mean()


def _sud_credits(cost: float) -> str:
    return json.dumps(
        [
            {
                "name": "Sustained usage discount",
                "amount": round(-SUD_SHARE * cost, 6),
                "type": "SUSTAINED_USAGE_DISCOUNT",
            }
        ]
    )


def _export_csv(plan: list[_Series], opts: Options, rng: np.random.Generator) -> str:
    """The export's rows: each day's cost spread over its rows, with per-row noise and credits."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    per = opts.rows_per_day
    shape = _diurnal_shape(per)
    stamps = _periods(opts)
    for series in plan:
        labels = json.dumps(
            [{"key": "env", "value": series.env}, {"key": "team", "value": series.project.split("-")[0]}]
        )
        noise = rng.lognormal(
            mean=-(ROW_SIGMA**2) / 2, sigma=ROW_SIGMA, size=(len(series.skus), opts.days, per)
        )
        for k, sku in enumerate(series.skus):
            sud = sku.startswith(SUD_SKUS)
            for d in range(opts.days):
                share = series.costs[k, d] / per
                for h in range(per):
                    cost = share * shape[h] * noise[k, d, h]
                    credit = _sud_credits(cost) if sud else "[]"
                    start, end = stamps[d][h]
                    writer.writerow(
                        [
                            ACCOUNT,
                            series.service,
                            sku,
                            start,
                            end,
                            series.project,
                            labels,
                            f"{cost:.6f}",
                            "USD",
                            credit,
                        ]
                    )
    return out.getvalue()


def _month_expected(opts: Options) -> dict[str, float]:
    """Noise-free net cost per project for the calendar month of the last day."""
    last = opts.start + dt.timedelta(days=opts.days - 1)
    month_start = last.replace(day=1)
    next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
    first = (month_start - opts.start).days
    span = (next_month - month_start).days
    out: dict[str, float] = {}
    for project, (_, services) in CATALOG.items():
        total = 0.0
        for _, weekend, skus in services:
            mult = base_daily(opts.start, first + span, weekend)[first:]
            net = sum(base * _net_factor(sku) for sku, base in skus)
            total += float(net * mult.sum())
        out[project] = round(total, 2)
    return out


# ----- Cloud Run services and their metric series for the waste analysis -----

SERVICES: list[dict[str, Any]] = [
    # busy and right-sized: nothing to report
    {
        "name": "checkout-api",
        "project": "shop-prod",
        "min_instances": 2,
        "vcpu": 2.0,
        "memory_gib": 1.0,
        "requests_per_5min": 180.0,
        "cpu": 45.0,
        "memory": 70.0,
        # 2 to 3 instances, busy about half of their time: request-based stays cheaper
        "usage": {"instances": 2.5, "busy": 0.55},
    },
    # min instance kept for a report nobody opens
    {
        "name": "legacy-reports",
        "project": "shop-prod",
        "min_instances": 1,
        "vcpu": 1.0,
        "memory_gib": 2.0,
        "requests_per_5min": 0.01,
        "cpu": 1.0,
        "memory": 20.0,
    },
    # staging admin UI with three warm instances, instance-based billing, no traffic at all
    {
        "name": "staging-admin",
        "project": "shop-staging",
        "min_instances": 3,
        "vcpu": 2.0,
        "memory_gib": 4.0,
        "billing": "instance",
        "requests_per_5min": 0.0,
        "cpu": 0.5,
        "memory": 15.0,
    },
    # four vCPUs for a job that uses half of one
    {
        "name": "image-resizer",
        "project": "shop-prod",
        "min_instances": 0,
        "vcpu": 4.0,
        "memory_gib": 8.0,
        "billing": "instance",
        "average_instances": 3.0,
        "requests_per_5min": 40.0,
        "cpu": 12.0,
        "memory": 20.0,
        # three instances billed around the clock, busy a fifth of the time: request-based wins
        "usage": {"instances": 3.0, "busy": 0.2},
    },
]


def service_metrics(seed: int, end: dt.date, days: int = 8) -> dict[str, dict[str, str]]:
    """service -> metric -> CSV text (``timestamp,value``, 5-minute samples ending at ``end``)."""
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    steps = days * 288
    t0 = dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time(), tzinfo=dt.UTC)
    stamps = [(t0 + dt.timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(steps)]
    phase = np.sin(np.arange(steps) / 288 * 2 * np.pi - np.pi / 2)
    out: dict[str, dict[str, str]] = {}
    for svc in SERVICES:
        files: dict[str, str] = {}
        rate = svc["requests_per_5min"] * (1 + 0.5 * phase)
        requests = rng.poisson(np.maximum(rate, 0.0))
        files["request_count"] = _series_csv(stamps, [f"{int(v)}" for v in requests])
        cpu = np.clip(svc["cpu"] * (1 + 0.3 * phase) * rng.lognormal(0, 0.1, steps), 0, 100)
        mem = np.clip(svc["memory"] * rng.lognormal(0, 0.03, steps), 0, 100)
        files["cpu"] = _series_csv(stamps, [f"{v:.2f}" for v in cpu])
        files["memory"] = _series_csv(stamps, [f"{v:.2f}" for v in mem])
        out[svc["name"]] = files
    # Instance and busy time for the billing-mode comparison, from their own generator so the
    # series above stay as they were.
    usage_rng = np.random.Generator(np.random.PCG64(seed + 2))
    for svc in SERVICES:
        usage = svc.get("usage")
        if usage is None:
            continue
        files = out[svc["name"]]
        instances = np.maximum(
            usage["instances"] * (1 + 0.2 * phase) * usage_rng.lognormal(0, 0.05, steps), svc["min_instances"]
        )
        busy = np.minimum(instances, instances * usage["busy"] * usage_rng.lognormal(0, 0.1, steps))
        files["instance_count"] = _series_csv(stamps, [f"{v:.2f}" for v in instances])
        if svc.get("billing") == "instance":
            # Instance-based: billed for the whole lifetime; busy instances from instance_count's
            # state=active.
            files["active_instances"] = _series_csv(stamps, [f"{v:.2f}" for v in busy])
            files["billable_instance_time"] = _series_csv(stamps, [f"{v * 300:.1f}" for v in instances])
        else:
            files["billable_instance_time"] = _series_csv(stamps, [f"{v * 300:.1f}" for v in busy])
    return out


def _series_csv(stamps: list[str], values: list[str]) -> str:
    return "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=True))


def sample_settings(truth: dict[str, Any]) -> dict[str, Any]:
    """Settings for the bundled sample: budgets set around the generated month so that exactly
    one alerts, and the sample's Cloud Run services."""
    month = truth["month_expected_net"]
    services = []
    for svc in SERVICES:
        entry = {k: svc[k] for k in ("name", "project", "min_instances", "vcpu", "memory_gib")}
        for key in ("billing", "average_instances"):
            if key in svc:
                entry[key] = svc[key]
        services.append(entry)
    return {
        "anomalies": {"detect_days": None},
        "budgets": [
            {"name": "shop-prod", "amount": round(month["shop-prod"] * 0.85, -2), "projects": ["shop-prod"]},
            {
                "name": "data-platform",
                "amount": round(month["data-platform"] * 1.25, -2),
                "projects": ["data-platform"],
            },
        ],
        "services": services,
    }


def write_sample(directory: Path, opts: Options | None = None) -> dict[str, Any]:
    """Write billing.csv, expected.json, settings.yaml and metrics/ into ``directory``."""
    import yaml

    opts = opts or Options()
    text, truth = generate(opts)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "billing.csv").write_text(text)
    settings = sample_settings(truth)
    truth["budget_alerts"] = ["shop-prod"]
    truth["waste"] = {
        "idle-min-instances": ["legacy-reports", "staging-admin"],
        "over-provisioned": ["image-resizer"],
    }
    truth["billing_mode"] = {"checkout-api": "keep", "image-resizer": "switch to request"}
    (directory / "expected.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    header = (
        "# Settings used when the cost automation analyzes the bundled sample (no --billing, no\n"
        "# BigQuery table). Generated by scripts/generate_billing_sample.py: do not edit by hand.\n"
    )
    (directory / "settings.yaml").write_text(header + yaml.safe_dump(settings, sort_keys=False))
    end = opts.start + dt.timedelta(days=opts.days - 1)
    for service, files in service_metrics(opts.seed, end).items():
        sub = directory / "metrics" / service
        sub.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (sub / f"{name}.csv").write_text(content)
    return truth


# ----- graded anomalies: the detection curve -----

GRADED_SIZES: tuple[float, ...] = (1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0)


@dataclass(frozen=True)
class GradedSet:
    """Daily net cost series ([series x day]) with anomalies of known size.

    An anomaly of size ``factor`` adds ``(factor - 1) x`` the noise-free expected day to that
    day's cost: at 2.0 the day costs about twice what it should.
    """

    values: np.ndarray
    keys: np.ndarray  # (series, 2): the series index and 0, as DailySeries expects
    first_day: int
    series: np.ndarray  # per anomaly: row
    column: np.ndarray  # per anomaly: day column
    factor: np.ndarray  # per anomaly: size as a multiple of the expected day


def graded_anomalies(
    seed: int,
    *,
    series: int = 200,
    days: int = 120,
    window_days: int = 28,
    sizes: tuple[float, ...] = GRADED_SIZES,
    min_level: float = 60.0,
    max_level: float = 5000.0,
    max_sigma: float = 0.08,
    start: dt.date = dt.date(2025, 1, 6),
) -> GradedSet:
    """Series with a weekly cycle, slow growth and lognormal daily noise; in each, one anomaly
    every two to three weeks after the first baseline window, sized from ``sizes`` in turn.

    Levels are log-uniform in ``[min_level, max_level]`` (the default keeps 1.8x above the default
    absolute margin), daily noise sigma uniform in ``[0.02, max_sigma]``.
    """
    rng = np.random.Generator(np.random.PCG64([seed, 31]))
    level = np.exp(rng.uniform(np.log(min_level), np.log(max_level), series))
    weekend = rng.uniform(0.3, 1.0, series)
    growth = rng.uniform(0.0, 0.003, series)
    sigma = rng.uniform(0.02, max_sigma, series)
    weekday = np.array([(start + dt.timedelta(days=d)).weekday() for d in range(days)])
    cycle = np.where(weekday[None, :] >= 5, weekend[:, None], 1.0)
    clean = level[:, None] * cycle * (1 + growth[:, None]) ** np.arange(days)[None, :]
    noise = rng.lognormal(-(sigma[:, None] ** 2) / 2, sigma[:, None], (series, days))
    values = clean * noise
    rows: list[int] = []
    cols: list[int] = []
    factors: list[float] = []
    turn = int(rng.integers(0, len(sizes)))
    for i in range(series):
        day = window_days + int(rng.integers(0, 7))
        while day < days:
            factor = sizes[turn % len(sizes)]
            turn += 1
            values[i, day] += (factor - 1) * clean[i, day]
            rows.append(i)
            cols.append(day)
            factors.append(factor)
            day += int(rng.integers(15, 22))
    return GradedSet(
        values=values,
        keys=np.stack([np.arange(series), np.zeros(series, np.int64)], axis=1),
        first_day=start.toordinal(),
        series=np.array(rows, np.int64),
        column=np.array(cols, np.int64),
        factor=np.array(factors),
    )

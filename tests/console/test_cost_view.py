"""The cost automation's run page: daily cost per series with each anomaly marked, budgets
against their forecast, the tables beneath, all drawn from what the run stored."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from orchestra.automations.cost import CostAutomation
from orchestra.automations.cost import analysis as an
from orchestra.automations.cost.billing import BillingData
from orchestra.automations.cost.charts import MAX_POINTS, MAX_SERIES, cost_charts
from orchestra.automations.cost.engine import load_sample_settings
from orchestra.console.pages import render_view
from orchestra.console.views import LineChart, RunView, Table
from orchestra.models import Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.rows import BadRows
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.cost.conftest import build_context

from .conftest import Console, Seeded

SAMPLE = Path(str(resources.files("orchestra").joinpath("samples/cost")))
HOSTILE_SERVICE = "<script>alert('cost')</script>"
# Far below Firestore's 1 MiB document limit: the whole report, charts included.
MAX_SUMMARY_BYTES = 200_000


def analysed_run(store: StateStore, *, billing: Path | None = None) -> Run:
    """A succeeded cost run holding what the analysis of ``billing`` (default: the bundled
    sample) stored."""
    params = {"billing": str(billing)} if billing else {}
    settings = load_sample_settings().model_dump() if billing else None
    ctx = build_context(CostAutomation, store, params=params, settings=settings)
    analysis = CostAutomation().analyze(ctx)
    return ctx.run.model_copy(
        update={
            "status": RunStatus.succeeded,
            "findings": analysis.findings,
            "summary": json.loads(json.dumps(analysis.summary)),  # as read back from a store
        }
    )


def svg_of(view: RunView) -> str:
    return "".join(str(item.svg or "") for section in render_view(view) for item in section.items)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from orchestra.store.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path_factory.mktemp("cost") / "state.db")
    try:
        return analysed_run(store)
    finally:
        store.close()


def test_sample_run_marks_exactly_the_known_anomalies(sample_run: Run) -> None:
    truth = json.loads((SAMPLE / "expected.json").read_text())["anomalies"]
    view = CostAutomation().run_view(sample_run)
    assert view is not None
    svg = svg_of(view)
    assert svg.count('<rect class="episode"') == len(truth) == 12
    # Each known anomaly is marked on its own day in the chart of its own series.
    charts = [i for s in view.sections for i in s.items if isinstance(i, LineChart) and "Daily" in i.title]
    marked = {(e.start.date().isoformat(), chart.series[0].name) for chart in charts for e in chart.episodes}
    assert marked == {(a["date"], f"{a['project']} / {a['service']}") for a in truth}
    for chart in charts:
        for episode in chart.episodes:
            assert episode.end - episode.start == dt.timedelta(days=1)
            assert episode.label.startswith("anomaly ") and "expected" in episode.label
    # The anomalies table lists each one, charted.
    [table] = [i for i in view.sections[0].items if isinstance(i, Table)]
    assert sorted((r[0], r[2], r[3]) for r in table.rows) == sorted(
        (a["date"], a["project"], a["service"]) for a in truth
    )
    assert {r[-1] for r in table.rows} == {"yes"}


def test_budget_chart_shows_forecast_against_the_budget_line(sample_run: Run) -> None:
    view = CostAutomation().run_view(sample_run)
    assert view is not None
    [budgets] = [s for s in view.sections if s.title.startswith("Budgets")]
    charts = [i for i in budgets.items if isinstance(i, LineChart)]
    assert [c.threshold for c in charts] == [14600.0, 14100.0]
    stored = {b["budget"]: b for b in sample_run.summary["budgets"]}
    for chart in charts:
        actual, forecast = chart.series
        name = chart.threshold_label.removeprefix("budget ")
        # The month so far: 1 .. 17 March, cumulative, ending at the month to date.
        assert len(actual.points) == 17
        assert actual.points[-1][1] == pytest.approx(stored[name]["month_to_date"], abs=0.05)
        values = [v for _, v in actual.points]
        assert values == sorted(values)
        # The forecast runs from there to the last day of the month.
        assert forecast.points[0] == actual.points[-1]
        assert forecast.points[-1] == (dt.datetime(2025, 3, 31, 12, tzinfo=dt.UTC), stored[name]["forecast"])
    [table] = [i for i in budgets.items if isinstance(i, Table)]
    assert [(r[0], r[-1]) for r in table.rows] == [("shop-prod", "yes"), ("data-platform", "no")]
    svg = svg_of(RunView(sections=[budgets]))
    assert svg.count('class="threshold"') == 2 and "budget shop-prod" in svg


def test_stored_charts_stay_bounded(sample_run: Run) -> None:
    assert stored_bytes(sample_run.summary) < MAX_SUMMARY_BYTES
    # A large export: 300 series over three years of days.
    rng = np.random.default_rng(7)
    days, n = 3 * 365, 300
    keys = np.stack([np.arange(n) // 30, np.arange(n) % 30], axis=1)
    series = an.DailySeries(
        values=rng.gamma(2.0, 50.0, size=(n, days)), keys=keys, first_day=dt.date(2022, 1, 1).toordinal()
    )
    data = BillingData(
        day=np.zeros(0, dtype=np.int64),
        project=np.zeros(0, dtype=np.int32),
        service=np.zeros(0, dtype=np.int32),
        sku=np.zeros(0, dtype=np.int32),
        cost=np.zeros(0),
        credits=np.zeros(0),
        project_names=[f"project-{i}" for i in range(10)],
        service_names=[f"service-{i}" for i in range(30)],
        sku_names=[],
        currency="EUR",
        source="test",
        rows=0,
        bad=BadRows("test"),
    )
    anomalies = [{"project": "project-9", "service": "service-29", "sku": None}]
    charts = cost_charts(series, series, data, anomalies, [], [])
    assert len(charts["daily"]) == MAX_SERIES
    assert all(len(d["series"]["t_ms"]) <= MAX_POINTS for d in charts["daily"])
    assert all(d["series"]["samples"] == days for d in charts["daily"])
    # The anomalous series comes first, then the largest by total.
    assert (charts["daily"][0]["project"], charts["daily"][0]["service"]) == ("project-9", "service-29")
    totals = [d["total"] for d in charts["daily"][1:]]
    assert totals == sorted(totals, reverse=True)
    assert stored_bytes(charts) < 100_000


def test_a_run_stored_without_charts_shows_its_tables() -> None:
    now = dt.datetime(2025, 3, 18, tzinfo=dt.UTC)
    run = Run(
        id="cost-old",
        task="cost",
        trigger_kind="manual",
        trigger_id="t",
        environment="development",
        mode="analyze",
        automation_level=1,
        created_at=now,
        updated_at=now,
        summary={"anomalies": {"count": 1, "top": [{"date": "2025-03-01", "project": "p", "service": "s"}]}},
    )
    view = CostAutomation().run_view(run)
    assert view is not None
    [section] = view.sections
    assert [type(i) for i in section.items] == [Table]
    assert svg_of(view) == ""
    assert CostAutomation().run_view(run.model_copy(update={"summary": {}})) is None


@pytest.mark.timeout(300)
def test_cost_run_page_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    # The sample export with one service renamed to markup: its anomalies reach the page.
    billing = tmp_path / "billing.csv"
    billing.write_text((SAMPLE / "billing.csv").read_text().replace(",Cloud SQL,", f",{HOSTILE_SERVICE},"))
    store = open_store(seeded.store_url)
    try:
        run = analysed_run(store, billing=billing).model_copy(update={"id": "cost-page"})
        assert store.create_run(run)
    finally:
        store.close()
    hostile = [a for a in run.summary["anomalies"]["top"] if a["service"] == HOSTILE_SERVICE]
    assert hostile  # the renamed service's anomalies are among those shown

    console = start_console("user:bob")
    browser.get(console.login_url)
    browser.get(f"{console.base}/runs/{run.id}")
    charts = browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart")
    assert len(charts) == len(run.summary["charts"]["daily"]) + 2  # two budgets
    marks = browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.episode")
    assert len(marks) == len(run.summary["anomalies"]["top"]) == 12
    tables = browser.find_elements(By.CSS_SELECTOR, "section.plugin table")
    captions = " ".join(t.get_attribute("textContent") or "" for t in tables)
    assert "Anomalies" in captions and "Forecast against budget" in captions
    main = browser.find_element(By.TAG_NAME, "main")
    # Names are shown as text, never run as markup.
    assert HOSTILE_SERVICE in (main.get_attribute("textContent") or "")
    assert browser.find_elements(By.TAG_NAME, "script") == []
    source = browser.page_source
    assert HOSTILE_SERVICE not in source
    assert re.search(
        r"&lt;script&gt;alert\('cost'\)&lt;/script&gt;|&lt;script&gt;alert\(&#39;cost&#39;\)", source
    )
    assert browser.save_screenshot(str(tmp_path / "cost-run.png"))

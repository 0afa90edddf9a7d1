"""The infrastructure automation's run page: the hour-of-week demand heatmap (7 × 24) with the
min-instances schedule written over it, when the schedule changes, and the decision for the hour,
drawn only from what the run stored; in a unit test and in a real browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from orchestra.automations.infrastructure import InfrastructureAutomation
from orchestra.console.pages import render_view
from orchestra.console.svg import text_alternative
from orchestra.console.views import Heatmap, RunView, Table
from orchestra.models import Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.performance.helpers import make_ctx

from .conftest import Console, Seeded


def sample_run(store: StateStore) -> Run:
    """A finished forecast-only analysis of the bundled sample service's request counts."""
    automation = InfrastructureAutomation()
    ctx = make_ctx(automation, store, params={"forecast_only": True})
    analysis = automation.analyze(ctx)
    run = ctx.run.model_copy(
        update={"status": RunStatus.succeeded, "findings": analysis.findings, "summary": analysis.summary}
    )
    return Run.model_validate(json.loads(json.dumps(run.model_dump(mode="json"))))


def heatmap_of(view: RunView) -> Heatmap:
    (chart,) = [i for s in view.sections for i in s.items if isinstance(i, Heatmap)]
    return chart


def test_the_heatmap_has_168_cells_with_the_schedule_over_them(sqlite_store: StateStore) -> None:
    run = sample_run(sqlite_store)
    report = run.summary["services"][0]
    view = InfrastructureAutomation().run_view(run)
    assert view is not None
    chart = heatmap_of(view)
    assert chart.rows == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] and len(chart.columns) == 24
    # Monday 00:00 is slot 0; each cell holds its slot's demand and scheduled min instances.
    for entry in report["profile"]:
        day, hour = divmod(entry["slot"], 24)
        assert chart.values[day][hour] == entry["p_rps"]
        assert chart.overlay is not None and chart.overlay[day][hour] == entry["min_instances"]
    assert [v for row in chart.overlay for v in row] == report["schedule"]
    svg = "".join(str(i.svg or "") for s in render_view(view) for i in s.items)
    assert svg.count('<rect class="cell"') == 168
    assert svg.count('<text class="overlay"') == 168
    drawn = [int(n) for n in re.findall(r'<text class="overlay"[^>]*>(\d+)</text>', svg)]
    assert drawn == report["schedule"]
    # The text alternative: demand then min instances, one row per day.
    table = text_alternative(chart)
    assert [row[0] for row in table.rows][7:] == [f"{d}: min instances" for d in chart.rows]
    assert table.rows[7][1:] == report["schedule"][:24]
    changes = [i for s in view.sections for i in s.items if isinstance(i, Table)][0]
    assert changes.rows == [[t["at"], t["min_instances"]] for t in report["transitions"]]
    assert len(changes.rows) > 0
    assert stored_bytes(run.summary) < 64 * 1024  # 168 cells and the schedule: bounded


def test_a_stored_schedule_without_demand_is_drawn_alone(sqlite_store: StateStore) -> None:
    run = sample_run(sqlite_store)
    summary = json.loads(json.dumps(run.summary))
    report = summary["services"][0]
    del report["profile"]
    report["schedule"] = [1] * 168
    report["transitions"] = []
    view = InfrastructureAutomation().run_view(run.model_copy(update={"summary": summary}))
    assert view is not None
    chart = heatmap_of(view)
    assert chart.overlay is None and chart.values == [[1.0] * 24] * 7
    assert "the stored schedule" in chart.title
    changes = [i for s in view.sections for i in s.items if isinstance(i, Table)][0]
    assert changes.rows == [["all week", 1]]


def test_no_schedule_no_view(sqlite_store: StateStore) -> None:
    run = sample_run(sqlite_store)
    summary = json.loads(json.dumps(run.summary))
    del summary["services"][0]["schedule"]
    assert InfrastructureAutomation().run_view(run.model_copy(update={"summary": summary})) is None


def test_a_schedule_of_the_wrong_length_is_refused(sqlite_store: StateStore) -> None:
    run = sample_run(sqlite_store)
    summary = json.loads(json.dumps(run.summary))
    summary["services"][0]["schedule"] = [1] * 24
    with pytest.raises(ValueError, match="schedule"):
        InfrastructureAutomation().run_view(run.model_copy(update={"summary": summary}))


@pytest.mark.timeout(300)
def test_infrastructure_run_page_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
) -> None:
    store = open_store(seeded.store_url)
    try:
        run = sample_run(store).model_copy(update={"id": "infrastructure-sample"})
        assert store.create_run(run)
    finally:
        store.close()
    console = start_console("user:bob")
    browser.get(console.login_url)
    browser.get(f"{console.base}/runs/{run.id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.cell")) == 168
    numbers = browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart text.overlay")
    assert [int(n.get_attribute("textContent") or "-1") for n in numbers] == run.summary["services"][0][
        "schedule"
    ]
    captions = " ".join(
        c.get_attribute("textContent") or ""
        for c in browser.find_elements(By.CSS_SELECTOR, "section.plugin caption")
    )
    assert "when the min-instances schedule changes" in captions
    assert browser.find_elements(By.TAG_NAME, "script") == []
    browser.set_window_size(390, 844)
    browser.get(f"{console.base}/runs/{run.id}")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400


def test_an_overlay_must_have_the_heatmap_shape() -> None:
    with pytest.raises(ValueError, match="overlay must be 2 rows of 2 numbers"):
        Heatmap(title="t", rows=["a", "b"], columns=["0", "1"], values=[[1, 2], [3, 4]], overlay=[[1, 2]])

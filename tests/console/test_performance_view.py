"""The performance automation's run page: per metric the stored series, the rule's threshold, each
breach episode shaded, an applied change's after window behind a marker, and the episodes as a
table; drawn only from what the run stored, in a unit test and in a real browser.

The browser test saves screenshots of the page built from the bundled sample (desktop 1280×900 and
a phone 390 wide) under its tmp dir, and also under ``$ORCHESTRA_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from orchestra.automations.performance import PerformanceAutomation
from orchestra.console.pages import render_view
from orchestra.console.views import LineChart, RunView, Table
from orchestra.models import ActionStatus, Mode, Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.performance.helpers import CPU_HIGH, copy_yaml, csv_rows, make_ctx, write_csv

from .conftest import Console, Seeded

# The bundled sample's CPU breaches of the default rule (above 70 % for 15 minutes).
# Each starts and ends on a sample above 70 % next to one at or below it (or the series' end).
SAMPLE_EPISODES = [
    ("2014-04-10 00:04", "2014-04-15 16:49"),
    ("2014-04-15 17:04", "2014-04-16 03:24"),
    ("2014-04-16 14:19", "2014-04-24 00:09"),
]
APPLIED_AT = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def as_stored(run: Run) -> Run:
    """The run as read back from a store (JSON round trip)."""
    return Run.model_validate(json.loads(json.dumps(run.model_dump(mode="json"))))


def sample_run(store: StateStore) -> Run:
    """A finished analysis of the bundled sample service."""
    automation = PerformanceAutomation()
    ctx = make_ctx(automation, store)
    analysis = automation.analyze(ctx)
    return as_stored(
        ctx.run.model_copy(
            update={"status": RunStatus.succeeded, "findings": analysis.findings, "summary": analysis.summary}
        )
    )


def changed_run(store: StateStore, folder: Path) -> Run:
    """An applied vCPU change on the first 2000 real CPU samples, verified on six samples after it."""
    automation = PerformanceAutomation()
    cpu = write_csv(folder / "cpu.csv", csv_rows(CPU_HIGH)[:2000])
    params = {"metrics": {"cpu": str(cpu)}, "service_yaml": str(copy_yaml(folder))}
    ctx = make_ctx(automation, store, params=params, settings={"settle_seconds": 0}, mode=Mode.apply)
    analysis = automation.analyze(ctx)
    (action,) = analysis.actions
    action.rollback = automation.prepare(ctx, action)
    applied = automation.apply(ctx, action)
    action.applied_at = APPLIED_AT
    with cpu.open("a") as out:
        out.writelines(f"2014-04-17 00:{m:02d}:00,{52.5 - m / 10}\n" for m in range(0, 30, 5))
    verification = automation.verify(ctx, action)
    action.status = ActionStatus.applied
    action.result = {
        **applied,
        "verification": {**verification.evidence, "outcome": verification.outcome, "checked_at": APPLIED_AT},
    }
    return as_stored(
        ctx.run.model_copy(
            update={
                "id": "performance-changed",
                "status": RunStatus.succeeded,
                "findings": analysis.findings,
                "actions": [action],
                "summary": analysis.summary,
            }
        )
    )


def svg_of(view: RunView) -> str:
    return "".join(str(item.svg or "") for section in render_view(view) for item in section.items)


@pytest.fixture(scope="module")
def stored_sample(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from orchestra.store.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path_factory.mktemp("performance") / "state.db")
    try:
        return sample_run(store)
    finally:
        store.close()


def test_the_sample_run_marks_exactly_its_three_episodes(stored_sample: Run) -> None:
    view = PerformanceAutomation().run_view(stored_sample)
    assert view is not None
    svg = svg_of(view)
    assert svg.count('<rect class="episode"') == len(SAMPLE_EPISODES) == 3
    assert svg.count('class="threshold"') == 1 and svg.count('class="series"') == 1
    (section,) = view.sections
    (chart,) = [i for i in section.items if isinstance(i, LineChart)]
    assert chart.threshold == 70 and len(chart.series[0].points) <= 300
    assert "300 of 4032 samples drawn" in chart.title
    # The text alternative: the episodes as a table.
    (table,) = [i for i in section.items if isinstance(i, Table)]
    assert table.columns == ["start (UTC)", "end (UTC)", "duration", "peak (%)"]
    assert [(row[0], row[1]) for row in table.rows] == SAMPLE_EPISODES
    assert [row[2] for row in table.rows] == ["5 d 16 h 45 min", "10 h 20 min", "7 d 9 h 50 min"]
    assert all(isinstance(r[3], float) and r[3] > 70 for r in table.rows)
    assert stored_bytes(stored_sample.model_dump(mode="json")) < 64 * 1024


def test_an_applied_change_shows_before_and_after_with_a_marker(
    tmp_path: Path, sqlite_store: StateStore
) -> None:
    run = changed_run(sqlite_store, tmp_path)
    view = PerformanceAutomation().run_view(run)
    assert view is not None
    whole, around = [i for s in view.sections for i in s.items if isinstance(i, LineChart)]
    cut = dt.datetime.fromtimestamp(run.actions[0].params["data_end_ms"] / 1000, dt.UTC)
    for chart in (whole, around):
        assert [s.name for s in chart.series] == ["cpu before", "cpu after set-resources"]
        assert [v for _, v in chart.series[1].points] == [52.5, 52.0, 51.5, 51.0, 50.5, 50.0]
        (marker,) = chart.markers
        # Files are history: the after window starts where the analysed data ended.
        assert (marker.at, marker.label) == (cut, "set-resources applied")
    # The second chart is the six hours before the change and everything after it.
    assert "around the change (7 h 36 min)" in around.title
    before = [t for t, _ in around.series[0].points]
    assert before and all(cut - dt.timedelta(hours=6) <= t <= cut for t in before)  # type: ignore[operator]
    (episode,) = around.episodes  # the last breach, cut at the window's start
    assert (episode.start, episode.end) == (cut - dt.timedelta(hours=6), cut)
    svg = svg_of(view)
    assert svg.count('class="marker"') == 2 and svg.count('class="series"') == 4
    assert svg.count('<rect class="episode"') == len(run.findings) + 1 == 4


def test_runs_without_stored_charts_show_nothing_of_their_own(stored_sample: Run) -> None:
    summary = json.loads(json.dumps(stored_sample.summary))
    del summary["services"][0]["charts"]
    assert PerformanceAutomation().run_view(stored_sample.model_copy(update={"summary": summary})) is None
    assert PerformanceAutomation().run_view(stored_sample.model_copy(update={"summary": {}})) is None


def test_series_left_out_by_the_cap_are_named(stored_sample: Run) -> None:
    summary = json.loads(json.dumps(stored_sample.summary))
    summary["services"][0]["charts"]["omitted"] = ["instance_count"]
    view = PerformanceAutomation().run_view(stored_sample.model_copy(update={"summary": summary}))
    assert view is not None
    last = view.sections[0].items[-1]
    assert isinstance(last, Table) and last.rows == [["instance_count"]]
    assert "at most 12 per run" in last.caption


def _save(driver: webdriver.Chrome, folder: Path, name: str) -> None:
    target = folder / f"{name}.png"
    assert driver.save_screenshot(str(target))
    wanted = os.environ.get("ORCHESTRA_SCREENSHOT_DIR")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(wanted) / target.name)


@pytest.mark.timeout(300)
def test_performance_run_pages_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    store = open_store(seeded.store_url)
    try:
        sample = sample_run(store).model_copy(update={"id": "performance-sample"})
        changed = changed_run(store, tmp_path)
        assert store.create_run(sample) and store.create_run(changed)
    finally:
        store.close()
    console = start_console("user:bob")
    browser.get(console.login_url)

    browser.get(f"{console.base}/runs/{sample.id}")
    assert browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart line.threshold")
    marks = browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.episode")
    assert len(marks) == len(SAMPLE_EPISODES) == 3
    rows = browser.find_elements(By.CSS_SELECTOR, "section.plugin figure > div.scroll > table tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == [s for s, _ in SAMPLE_EPISODES]
    section = browser.find_element(By.CSS_SELECTOR, "section.plugin")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    _save(browser, shots, "performance-run")
    assert section.screenshot(str(shots / "performance-run-charts.png"))
    browser.set_window_size(390, 844)  # a phone
    browser.get(f"{console.base}/runs/{sample.id}")
    chart = browser.find_element(By.CSS_SELECTOR, "section.plugin svg.chart")
    assert chart.size["width"] <= 390
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    _save(browser, shots, "performance-run-phone")

    browser.set_window_size(1280, 900)
    browser.get(f"{console.base}/runs/{changed.id}")
    # The whole history and the hours around the change, each with the change marked.
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart line.marker")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart polyline.series")) == 4
    marks = browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.episode")
    assert len(marks) == len(changed.findings) + 1 == 4
    browser.execute_script(
        "arguments[0].scrollIntoView()", browser.find_element(By.CSS_SELECTOR, "section.plugin")
    )
    _save(browser, shots, "performance-run-after-change")
    assert browser.find_elements(By.TAG_NAME, "script") == []


def test_marker_labels_are_escaped() -> None:
    from orchestra.console import svg
    from orchestra.console.views import Marker, Series

    chart = LineChart(
        title="t",
        series=[Series(name="s", points=[(APPLIED_AT, 1.0), (APPLIED_AT + dt.timedelta(hours=1), 2.0)])],
        markers=[Marker(at=APPLIED_AT + dt.timedelta(minutes=30), label="<b>x</b>")],
    )
    drawn = str(svg.line_chart(chart, "m"))
    assert drawn.count('class="marker"') == 1 and "<b>" not in drawn and "&lt;b&gt;x&lt;/b&gt;" in drawn
    assert ["marker: <b>x</b>", "2026-01-05 12:30", None] in svg.text_alternative(chart).rows

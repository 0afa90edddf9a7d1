"""The testing automation's run page: flake and flip rates of the flakiest tests as bars, their
outcomes over the stored runs as a grid, and the tables, drawn from what the run stored."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from orchestra.automations.testing.flaky import RECENT_RUNS
from orchestra.automations.testing.plugin import TestingAutomation
from orchestra.automations.testing.results import SuiteRun, TestResult, save_suite_run
from orchestra.automations.testing.view import MAX_BARS
from orchestra.console.pages import render_view
from orchestra.console.views import BarChart, Heatmap, RunView, Table
from orchestra.models import Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.cost.conftest import build_context

from .conftest import Console, Seeded

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
HOSTILE_TEST = "<script>alert('test')</script>"
MAX_SUMMARY_BYTES = 200_000
# Outcomes over ten runs, oldest first: F failed, R passed after a rerun, P passed.
KNOWN = {
    "shop.cart::test_flip": "PFPFPFPFPF",
    HOSTILE_TEST: "PPFPPPPFPP",
    "shop.pay::test_rerun": "PPRPPPPPPP",
    "shop.pay::test_steady": "PPPPPPPPPP",
}


def history(store: StateStore, outcomes: dict[str, str]) -> None:
    """Stored runs of suite ``unit``, one per letter position, each on its own commit."""
    runs = max(len(o) for o in outcomes.values())
    for i in range(runs):
        tests = [
            TestResult(
                id=name,
                outcome="failed" if pattern[i] == "F" else "passed",
                duration_seconds=0.5,
                reruns_failed=1 if pattern[i] == "R" else 0,
            )
            for name, pattern in outcomes.items()
            if i < len(pattern)
        ]
        save_suite_run(
            store,
            SuiteRun(
                id=f"unit-{i:03d}",
                suite="unit",
                status="passed",
                reason="",
                revision=f"commit{i:03d}",
                started_at=T0 + dt.timedelta(hours=i),
                finished_at=T0 + dt.timedelta(hours=i, seconds=30),
                duration_seconds=30.0,
                tests=tests,
            ),
        )


def analysed_run(store: StateStore) -> Run:
    ctx = build_context(TestingAutomation, store)
    analysis = TestingAutomation().analyze(ctx)
    return ctx.run.model_copy(
        update={
            "status": RunStatus.succeeded,
            "findings": analysis.findings,
            "summary": json.loads(json.dumps(analysis.summary)),
        }
    )


def parts(view: RunView) -> tuple[dict[str, BarChart], list[Heatmap], list[Table]]:
    items = [i for s in view.sections for i in s.items]
    return (
        {i.title: i for i in items if isinstance(i, BarChart)},
        [i for i in items if isinstance(i, Heatmap)],
        [i for i in items if isinstance(i, Table)],
    )


def svg_of(view: RunView) -> str:
    return "".join(str(item.svg or "") for section in render_view(view) for item in section.items)


def test_known_history_draws_each_flaky_test_and_its_outcomes(sqlite_store: StateStore) -> None:
    history(sqlite_store, KNOWN)
    run = analysed_run(sqlite_store)
    view = TestingAutomation().run_view(run)
    assert view is not None
    bars, [grid], [table] = parts(view)
    flake = bars["Flake rate of the flakiest tests"]
    flip = bars["Flip rate of the same tests (outcome changes per run)"]
    # Three flaky tests (the steady one is not), flakiest first.
    assert [(b.label, b.value) for b in flake.bars] == [
        ("shop.cart::test_flip (unit)", 50.0),
        (f"{HOSTILE_TEST} (unit)", 20.0),
        ("shop.pay::test_rerun (unit)", 10.0),
    ]
    assert [b.value for b in flip.bars] == [100.0, round(4 / 9 * 100, 1), 0.0]
    # The grid holds each test's ten outcomes: one cell per failure, rerun or pass.
    assert grid.rows == [b.label for b in flake.bars]
    assert grid.columns == [str(n) for n in range(9, -1, -1)]
    letters = {1.0: "F", 0.5: "R", 0.0: "P"}
    for name, row in zip(
        ("shop.cart::test_flip", HOSTILE_TEST, "shop.pay::test_rerun"), grid.values, strict=True
    ):
        assert "".join(letters[v] for v in row if v is not None) == KNOWN[name]
    assert sum(v == 1.0 for row in grid.values for v in row) == 5 + 2
    assert [r[0] for r in table.rows] == ["shop.cart::test_flip", HOSTILE_TEST, "shop.pay::test_rerun"]
    assert table.rows[0][6] == "suggested"
    svg = svg_of(view)
    assert svg.count('<rect class="bar"') == 6 and svg.count('<rect class="cell"') == 30
    assert HOSTILE_TEST not in svg and "&lt;script&gt;" in svg


def test_stored_flaky_tests_stay_bounded(sqlite_store: StateStore) -> None:
    # 40 tests each failing every third run over 80 runs: more than the report keeps.
    outcomes = {
        f"t::flaky_{n:02d}": "".join("F" if (i + n) % 3 == 0 else "P" for i in range(80)) for n in range(40)
    }
    history(sqlite_store, outcomes)
    ctx = build_context(TestingAutomation, sqlite_store, settings={"flaky": {"history_runs": 100}})
    summary = TestingAutomation().analyze(ctx).summary
    assert len(summary["flaky"]) == 20
    assert all(len(f["recent"]) == RECENT_RUNS for f in summary["flaky"])
    assert stored_bytes(summary) < MAX_SUMMARY_BYTES
    run = ctx.run.model_copy(update={"summary": json.loads(json.dumps(summary))})
    view = TestingAutomation().run_view(run)
    assert view is not None
    bars, [grid], [table] = parts(view)
    assert all(len(b.bars) == MAX_BARS for b in bars.values())
    assert len(grid.rows) == MAX_BARS and len(grid.columns) == RECENT_RUNS
    assert len(table.rows) == 20


def test_a_run_with_no_flaky_tests_shows_an_empty_table(sqlite_store: StateStore) -> None:
    history(sqlite_store, {"t::steady": "PPPPPP"})
    view = TestingAutomation().run_view(analysed_run(sqlite_store))
    assert view is not None
    bars, grids, [table] = parts(view)
    assert bars == {} and grids == [] and table.rows == []


@pytest.mark.timeout(300)
def test_testing_run_page_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    store = open_store(seeded.store_url)
    try:
        history(store, KNOWN)
        run = analysed_run(store).model_copy(update={"id": "testing-page"})
        assert store.create_run(run)
    finally:
        store.close()

    console = start_console("user:bob")
    browser.get(console.login_url)
    browser.get(f"{console.base}/runs/{run.id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.bar")) == 6
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.cell")) == 30
    tables = browser.find_elements(By.CSS_SELECTOR, "section.plugin table")
    assert len(tables) == 1 + 3  # the flaky tests and each chart's data table
    text = browser.find_element(By.TAG_NAME, "main").get_attribute("textContent") or ""
    assert HOSTILE_TEST in text and "Flaky tests (3, from 10 stored suite runs)" in text
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert HOSTILE_TEST not in browser.page_source
    assert browser.save_screenshot(str(tmp_path / "testing-run.png"))

"""The ai-services automation's run page: monthly cost and P95 latency per model and per route ×
model as bars, with their tables, drawn from what the run stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from orchestra.automations.ai_services import AIServicesAutomation
from orchestra.automations.ai_services.analysis import MAX_ROWS
from orchestra.console.pages import render_view
from orchestra.console.views import BarChart, RunView, Table
from orchestra.models import Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.cost.conftest import build_context

from .conftest import Console, Seeded

SAMPLE = Path(str(resources.files("orchestra").joinpath("samples/ai_services")))
HOSTILE_ROUTE = "<script>alert('ai')</script>"
MAX_SUMMARY_BYTES = 200_000


def analysed_run(store: StateStore, *, usage: Path | None = None) -> Run:
    settings = yaml.safe_load((SAMPLE / "settings.yaml").read_text()) if usage else None
    params = {"usage": str(usage)} if usage else {}
    ctx = build_context(AIServicesAutomation, store, params=params, settings=settings)
    analysis = AIServicesAutomation().analyze(ctx)
    return ctx.run.model_copy(
        update={
            "status": RunStatus.succeeded,
            "findings": analysis.findings,
            "summary": json.loads(json.dumps(analysis.summary)),
        }
    )


def svg_of(view: RunView) -> str:
    return "".join(str(item.svg or "") for section in render_view(view) for item in section.items)


def charts(view: RunView) -> dict[str, BarChart]:
    return {i.title: i for s in view.sections for i in s.items if isinstance(i, BarChart)}


def record(route: str, model: str, latency: float, second: int) -> dict[str, Any]:
    return {
        "route": route,
        "model": model,
        "timestamp": f"2025-03-10T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z",
        "prompt_hash": f"p{second}",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": latency,
        "status": "ok",
    }


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from orchestra.store.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path_factory.mktemp("ai") / "state.db")
    try:
        return analysed_run(store)
    finally:
        store.close()


def test_sample_run_draws_cost_and_p95_per_model_and_route(sample_run: Run) -> None:
    view = AIServicesAutomation().run_view(sample_run)
    assert view is not None
    found = charts(view)
    by_model = {r["model"]: r for r in sample_run.summary["by_model"]}
    assert set(by_model) == {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"}
    cost = found["Monthly cost per model"]
    assert {b.label: b.value for b in cost.bars} == {m: r["monthly_cost"] for m, r in by_model.items()}
    assert [b.value for b in cost.bars] == sorted((b.value for b in cost.bars), reverse=True)
    p95 = found["P95 latency per model"]
    assert {b.label: b.value for b in p95.bars} == {m: r["latency_p95_ms"] for m, r in by_model.items()}
    # The sample's five routes each use one model: five pairs.
    pairs = found["Monthly cost per route and model"]
    assert sorted(b.label for b in pairs.bars) == sorted(
        f"{route} · {model}"
        for route, model in (
            ("classify-ticket", "gemini-2.5-pro"),
            ("faq", "gemini-2.5-flash"),
            ("support-chat", "gemini-2.5-pro"),
            ("tagging", "gemini-2.5-flash-lite"),
            ("summarize", "gemini-2.5-flash"),
        )
    )
    assert len(found["P95 latency per route and model"].bars) == 5
    assert svg_of(view).count('<rect class="bar"') == 3 + 3 + 5 + 5
    tables = [i for s in view.sections for i in s.items if isinstance(i, Table)]
    assert [len(t.rows) for t in tables] == [3, 5]


def test_p95_is_that_of_the_pair_and_routes_are_bounded(tmp_path: Path) -> None:
    from orchestra.store.sqlite import SqliteStateStore

    # route-0 on two models with known latencies; 149 more routes, cheaper, on one model.
    rows = [record("route-0", "gemini-2.5-pro", 100.0 + i, i) for i in range(200)]
    rows += [record("route-0", "gemini-2.5-flash", 10.0 * (i + 1), 1000 + i) for i in range(100)]
    rows += [
        record(f"route-{r}", "gemini-2.5-flash-lite", 50.0, 2000 + r * 2 + i)
        for r in range(1, 150)
        for i in range(2)
    ]
    usage = tmp_path / "usage.jsonl"
    usage.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        run = analysed_run(store, usage=usage)
    finally:
        store.close()
    summary = run.summary
    pair = {(r["route"], r["model"]): r for r in summary["by_route_model"]}
    assert pair[("route-0", "gemini-2.5-pro")]["latency_p95_ms"] == pytest.approx(
        float(np.percentile(np.arange(200) + 100.0, 95)), abs=0.1
    )
    assert pair[("route-0", "gemini-2.5-flash")]["latency_p95_ms"] == pytest.approx(
        float(np.percentile(10.0 * (np.arange(100) + 1), 95)), abs=0.1
    )
    assert summary["routes_total"] == 150 and len(summary["by_route"]) == MAX_ROWS
    assert len(summary["by_route_model"]) == MAX_ROWS
    assert summary["by_route_model"][0]["route"] == "route-0"  # the costliest kept
    assert stored_bytes(summary) < MAX_SUMMARY_BYTES
    view = AIServicesAutomation().run_view(run)
    assert view is not None
    found = charts(view)
    assert len(found["Monthly cost per route and model (the costliest 12 of 100)"].bars) == 12
    assert [len(t.rows) for s in view.sections for t in s.items if isinstance(t, Table)] == [3, MAX_ROWS]


def test_a_run_stored_before_pairs_shows_routes() -> None:
    import datetime as dt

    now = dt.datetime(2025, 3, 18, tzinfo=dt.UTC)
    row = {"requests": 3, "monthly_cost": None, "latency_p95_ms": 12.5, "latency_p50_ms": 10.0}
    run = Run(
        id="ai-old",
        task="ai-services",
        trigger_kind="manual",
        trigger_id="t",
        environment="development",
        mode="analyze",
        automation_level=1,
        created_at=now,
        updated_at=now,
        summary={"by_model": [{"model": "m", **row}], "by_route": [{"route": "r", **row}]},
    )
    view = AIServicesAutomation().run_view(run)
    assert view is not None
    assert [s.title for s in view.sections] == ["Cost and latency per model", "Cost and latency per route"]
    # Unpriced: no cost bars, the latency bars and the table stay.
    assert list(charts(view)) == ["P95 latency per model", "P95 latency per route"]


@pytest.mark.timeout(300)
def test_ai_run_page_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    usage = tmp_path / "usage.jsonl"
    usage.write_text(
        (SAMPLE / "usage.jsonl")
        .read_text()
        .replace('"route":"faq"', json.dumps({"route": HOSTILE_ROUTE})[1:-1])
    )
    store = open_store(seeded.store_url)
    try:
        run = analysed_run(store, usage=usage).model_copy(update={"id": "ai-services-page"})
        assert store.create_run(run)
    finally:
        store.close()
    assert any(r["route"] == HOSTILE_ROUTE for r in run.summary["by_route_model"])

    console = start_console("user:bob")
    browser.get(console.login_url)
    browser.get(f"{console.base}/runs/{run.id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.bar")) == 16
    tables = browser.find_elements(By.CSS_SELECTOR, "section.plugin table")
    assert len(tables) == 2 + 4  # two usage tables and each chart's data table
    text = browser.find_element(By.TAG_NAME, "main").get_attribute("textContent") or ""
    assert HOSTILE_ROUTE in text and "Usage per route and model" in text
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert HOSTILE_ROUTE not in browser.page_source
    assert browser.save_screenshot(str(tmp_path / "ai-run.png"))

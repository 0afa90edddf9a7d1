"""The workspace automation's run page: the largest blobs as bars and the repository's size over
the runs of the same repository, with their tables, drawn from what the runs stored."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from orchestra.automations.workspace.plugin import WorkspaceAutomation
from orchestra.automations.workspace.sizes import MAX_POINTS
from orchestra.automations.workspace.view import MAX_BARS
from orchestra.console.pages import render_view
from orchestra.console.views import BarChart, LineChart, RunView, Table
from orchestra.models import Run, RunStatus
from orchestra.store import open_store
from orchestra.store.base import StateStore
from orchestra.toolkit.series import stored_bytes
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.cost.conftest import build_context
from tests.workspace.helpers import commit, init, random_bytes

from .conftest import Console, Seeded

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
KIB = 1024
HOSTILE_PATH = "<script>alert('ws')</script>.bin"
# Blobs of known sizes (random bytes: they do not compress), largest first.
BLOBS = {f"data/blob-{n:02d}.bin": (200 - 10 * n) * KIB for n in range(15)}
MAX_SUMMARY_BYTES = 300_000


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[gc]\n\tautoDetach = false\n")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")
        monkeypatch.setenv(f"GIT_{role}_DATE", "2026-01-05T12:00:00Z")
    yield


def make_repo(path: Path, blobs: dict[str, int]) -> Path:
    init(path)
    commit(path, "blobs", {name: random_bytes(size, seed=i) for i, (name, size) in enumerate(blobs.items())})
    return path


def analyse(store: StateStore, repo: Path, run_id: str, at: dt.datetime) -> Run:
    """Analyse ``repo`` as run ``run_id`` created at ``at`` and store the succeeded run."""
    ctx = build_context(WorkspaceAutomation, store, params={"repo": str(repo)}, now=at)
    ctx.run = ctx.run.model_copy(update={"id": run_id})
    analysis = WorkspaceAutomation().analyze(ctx)
    run = ctx.run.model_copy(
        update={
            "status": RunStatus.succeeded,
            "findings": analysis.findings,
            "summary": json.loads(json.dumps(analysis.summary)),
        }
    )
    assert store.create_run(run)
    return run


def items(view: RunView) -> list[object]:
    return [i for s in view.sections for i in s.items]


def svg_of(view: RunView) -> str:
    return "".join(str(item.svg or "") for section in render_view(view) for item in section.items)


def test_largest_blobs_are_the_known_ones_largest_first(sqlite_store: StateStore, tmp_path: Path) -> None:
    run = analyse(sqlite_store, make_repo(tmp_path / "repo", BLOBS), "workspace-1", T0)
    view = WorkspaceAutomation().run_view(run)
    assert view is not None
    [bars] = [i for i in items(view) if isinstance(i, BarChart) and i.title.startswith("Largest")]
    expected = sorted(BLOBS.items(), key=lambda kv: -kv[1])[:MAX_BARS]
    assert bars.y_label == "size (KiB)"
    assert [(b.label, b.value) for b in bars.bars] == [(name, size / KIB) for name, size in expected]
    [table] = [i for i in items(view) if isinstance(i, Table) and i.caption.startswith("Largest")]
    assert [(r[0], r[1]) for r in table.rows] == sorted(BLOBS.items(), key=lambda kv: -kv[1])
    assert {r[3] for r in table.rows} == {"yes"}
    # A first run of a repository: its own size, as bars.
    [size] = [i for i in items(view) if isinstance(i, BarChart) and i.title.startswith("Repository size")]
    total = run.summary["objects"]["loose_size_bytes"] + run.summary["objects"]["pack_size_bytes"]
    assert size.y_label == "size (MiB)"  # about 2 MiB of blobs that do not compress
    assert sum(b.value for b in size.bars) == pytest.approx(total / KIB / KIB, abs=0.01)
    assert svg_of(view).count('<rect class="bar"') == MAX_BARS + 3


def test_size_over_the_runs_of_the_same_repository(sqlite_store: StateStore, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", dict(list(BLOBS.items())[:3]))
    other = make_repo(tmp_path / "other", {"x.bin": 10 * KIB})
    first = analyse(sqlite_store, repo, "workspace-1", T0)
    analyse(sqlite_store, other, "workspace-other", T0 + dt.timedelta(hours=12))
    commit(repo, "more", {"more.bin": random_bytes(300 * KIB, seed=99)})
    second = analyse(sqlite_store, repo, "workspace-2", T0 + dt.timedelta(days=1))
    commit(repo, "again", {"again.bin": random_bytes(100 * KIB, seed=98)})
    third = analyse(sqlite_store, repo, "workspace-3", T0 + dt.timedelta(days=2))

    history = third.summary["size_history"]
    assert [p["run_id"] for p in history] == ["workspace-1", "workspace-2", "workspace-3"]
    for point, run in zip(history, (first, second, third), strict=True):
        objects = run.summary["objects"]
        assert (point["loose_bytes"], point["pack_bytes"]) == (
            objects["loose_size_bytes"],
            objects["pack_size_bytes"],
        )
    totals = [p["loose_bytes"] + p["pack_bytes"] + p["garbage_bytes"] for p in history]
    assert totals == sorted(totals) and totals[-1] - totals[0] >= 400 * KIB

    view = WorkspaceAutomation().run_view(third)
    assert view is not None
    [line] = [i for i in items(view) if isinstance(i, LineChart)]
    assert [s.name for s in line.series] == ["total", "packs", "loose objects"]
    assert [len(s.points) for s in line.series] == [3, 3, 3]
    assert line.threshold is None  # far below the 1 GiB default limit
    assert [p[0] for p in line.series[0].points] == [T0 + dt.timedelta(days=d) for d in range(3)]
    [table] = [i for i in items(view) if isinstance(i, Table) and i.caption == "Object store per run"]
    assert [r[0] for r in table.rows] == ["workspace-1", "workspace-2", "workspace-3"]


def test_size_history_stays_bounded(sqlite_store: StateStore, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", dict(list(BLOBS.items())[:2]))
    seed = analyse(sqlite_store, repo, "workspace-0", T0)
    long = [
        {
            **seed.summary["size_history"][0],
            "run_id": f"old-{i}",
            "at": (T0 - dt.timedelta(days=100 - i)).isoformat(),
        }
        for i in range(100)
    ]
    assert sqlite_store.save_run(seed.model_copy(update={"summary": {**seed.summary, "size_history": long}}))
    run = analyse(sqlite_store, repo, "workspace-new", T0 + dt.timedelta(days=1))
    history = run.summary["size_history"]
    assert len(history) == MAX_POINTS
    assert history[-1]["run_id"] == "workspace-new" and history[0]["run_id"] == f"old-{100 - MAX_POINTS + 1}"
    assert stored_bytes(run.summary) < MAX_SUMMARY_BYTES


@pytest.mark.timeout(300)
def test_workspace_run_page_in_a_browser(
    seeded: Seeded,
    start_console: Callable[[str], Console],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {**dict(list(BLOBS.items())[:4]), HOSTILE_PATH: 500 * KIB})
    store = open_store(seeded.store_url)
    try:
        analyse(store, repo, "workspace-page-1", T0)
        commit(repo, "more", {"more.bin": random_bytes(50 * KIB, seed=7)})
        run = analyse(store, repo, "workspace-page-2", T0 + dt.timedelta(days=1))
    finally:
        store.close()
    assert run.summary["largest_blobs"][0]["path"] == HOSTILE_PATH

    console = start_console("user:bob")
    browser.get(console.login_url)
    browser.get(f"{console.base}/runs/{run.id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart rect.bar")) == 6
    assert len(browser.find_elements(By.CSS_SELECTOR, "section.plugin svg.chart polyline.series")) == 3
    tables = browser.find_elements(By.CSS_SELECTOR, "section.plugin table")
    assert len(tables) == 2 + 2  # blobs, object store per run, and each chart's data table
    text = browser.find_element(By.TAG_NAME, "main").get_attribute("textContent") or ""
    assert HOSTILE_PATH in text and "Repository size over 2 runs" in text
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert HOSTILE_PATH not in browser.page_source
    assert browser.save_screenshot(str(tmp_path / "workspace-run.png"))

"""Contract: runs filtered by environment and trigger kind, and read page by page through a
cursor, behave the same in every adapter (SQLite and the Firestore emulator)."""

from __future__ import annotations

import pytest
from orchestra.errors import InputError
from orchestra.models import RunStatus, TriggerKind
from orchestra.store.base import StateStore, decode_run_cursor

from .test_contract import make_run


def _seed(store: StateStore) -> list[str]:
    """Seven runs; three share one creation instant (ties are broken on the id)."""
    created = {"r1": 0, "r2": 10, "r3": 20, "r4": 20, "r5": 20, "r6": 30, "r7": 40}
    for run_id, seconds in created.items():
        run = make_run(run_id, created=seconds, task="cost" if run_id in {"r2", "r6"} else "performance")
        if run_id in {"r3", "r7"}:
            run = run.model_copy(update={"environment": "production", "trigger_kind": TriggerKind.webhook})
        if run_id == "r4":
            run = run.model_copy(update={"status": RunStatus.failed})
        assert store.create_run(run)
    # Newest first; equal creation times in descending id order.
    return ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]


def _walk(store: StateStore, limit: int, **filters: str) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = store.list_runs_page(limit=limit, after=after, **filters)
        pages.append([r.id for r in page.runs])
        if page.next is None:
            return pages
        after = page.next


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_pages_cover_every_run_once_in_order(store: StateStore, limit: int) -> None:
    expected = _seed(store)
    pages = _walk(store, limit)
    assert [run_id for page in pages for run_id in page] == expected
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


def test_a_page_that_ends_inside_a_tie_continues_after_it(store: StateStore) -> None:
    _seed(store)
    first = store.list_runs_page(limit=3)
    assert [r.id for r in first.runs] == ["r7", "r6", "r5"]
    assert first.next is not None and decode_run_cursor(first.next)[1] == "r5"
    second = store.list_runs_page(limit=3, after=first.next)
    assert [r.id for r in second.runs] == ["r4", "r3", "r2"]


def test_filters_by_environment_trigger_kind_task_and_status(store: StateStore) -> None:
    _seed(store)
    assert [r.id for r in store.list_runs(environment="production")] == ["r7", "r3"]
    assert [r.id for r in store.list_runs(trigger_kind="webhook")] == ["r7", "r3"]
    assert [r.id for r in store.list_runs(trigger_kind="manual", task="cost")] == ["r6", "r2"]
    page = store.list_runs_page(environment="development", status="queued", limit=2)
    assert [r.id for r in page.runs] == ["r6", "r5"]
    assert _walk(store, 2, environment="development", status="queued") == [["r6", "r5"], ["r2", "r1"]]
    assert store.list_runs_page(environment="staging").runs == []


@pytest.mark.parametrize("cursor", ["", "nonsense", "2026-01-05~r1", "2026-01-05T12:00:00.000000Z~"])
def test_a_malformed_cursor_is_refused_naming_the_field(store: StateStore, cursor: str) -> None:
    _seed(store)
    with pytest.raises(InputError) as caught:
        store.list_runs_page(after=cursor or "~", limit=2)
    assert caught.value.where == "after"
    assert "TIMESTAMP~RUN_ID" in str(caught.value)

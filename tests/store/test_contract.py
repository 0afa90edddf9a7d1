"""One behavioural contract for every StateStore adapter (runs against SQLite and the Firestore
emulator through the parametrized ``store`` fixture)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from orchestra.clock import FakeClock
from orchestra.models import (
    DeadLetter,
    EventRecord,
    Lease,
    Mode,
    Run,
    RunStatus,
    TriggerKind,
    format_timestamp,
    safe_doc_id,
)
from orchestra.store.base import StateStore

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
T = TypeVar("T")


def ts(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_run(
    run_id: str,
    *,
    task: str = "performance",
    status: RunStatus = RunStatus.queued,
    created: float = 0,
    trigger_id: str | None = None,
    source_event: str | None = None,
    lease_owner: str | None = None,
    expires: float | None = None,
) -> Run:
    return Run(
        id=run_id,
        task=task,
        trigger_kind=TriggerKind.manual,
        trigger_id=trigger_id or f"trigger-{run_id}",
        environment="development",
        mode=Mode.analyze,
        automation_level=1,
        status=status,
        created_at=ts(created),
        updated_at=ts(created),
        source_event=source_event,
        lease=Lease(owner=lease_owner, expires_at=ts(created + 60), heartbeat_at=ts(created))
        if lease_owner
        else None,
        expires_at=ts(expires) if expires is not None else None,
    )


def make_event(
    event_id: str,
    *,
    status: str = "accepted",
    source: str = "scheduled",
    received: float = 0,
    expires: float | None = None,
) -> EventRecord:
    return EventRecord(
        id=event_id,
        source=source,
        event_id=f"msg-{event_id}",
        kind="tick",
        status=status,
        received_at=ts(received),
        payload={"n": received},
        expires_at=ts(expires) if expires is not None else None,
    )


def make_letter(letter_id: str, *, received: float = 0, expires: float | None = None) -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        message_id=f"m-{letter_id}",
        origin="projects/p/subscriptions/orchestra-events",
        delivery_attempt=5,
        data='{"bad": true}',
        attributes={"source": "alerts"},
        received_at=ts(received),
        expires_at=ts(expires) if expires is not None else None,
    )


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


# ----- primitives ---------------------------------------------------------------------------


def test_create_is_create_if_absent(store: StateStore) -> None:
    assert store.create("things", "a", {"id": "a", "v": 1}) is True
    assert store.create("things", "a", {"id": "a", "v": 2}) is False
    assert store.get("things", "a") == {"id": "a", "v": 1}


def test_collections_are_separate(store: StateStore) -> None:
    assert store.create("things", "a", {"id": "a", "where": "things"})
    assert store.create("others", "a", {"id": "a", "where": "others"})
    assert store.get("things", "a") == {"id": "a", "where": "things"}
    assert store.get("others", "a") == {"id": "a", "where": "others"}


def test_get_missing_is_none(store: StateStore) -> None:
    assert store.get("things", "nope") is None


def test_put_creates_and_overwrites_whole_document(store: StateStore) -> None:
    store.put("things", "a", {"id": "a", "v": 1, "gone": True})
    assert store.get("things", "a") == {"id": "a", "v": 1, "gone": True}
    store.put("things", "a", {"id": "a", "v": 2})
    assert store.get("things", "a") == {"id": "a", "v": 2}


def test_update_if_missing_document_is_false(store: StateStore) -> None:
    assert store.update_if("things", "nope", {"id": "nope"}, expect={}) is False
    assert store.get("things", "nope") is None


def test_update_if_compares_then_replaces(store: StateStore) -> None:
    store.put("things", "a", {"id": "a", "version": 1, "extra": "x"})
    assert store.update_if("things", "a", {"id": "a", "version": 2}, expect={"version": 7}) is False
    assert store.get("things", "a") == {"id": "a", "version": 1, "extra": "x"}
    assert store.update_if("things", "a", {"id": "a", "version": 2}, expect={"version": 1}) is True
    assert store.get("things", "a") == {"id": "a", "version": 2}
    assert store.update_if("things", "a", {"id": "a", "version": 3}, expect={}) is True
    assert store.get("things", "a") == {"id": "a", "version": 3}


def test_update_if_dotted_and_none_expectations(store: StateStore) -> None:
    store.put("things", "a", {"id": "a", "lease": {"owner": "w1", "n": 1}, "note": None})
    assert (
        store.update_if(
            "things",
            "a",
            {"id": "a", "lease": {"owner": "w1", "n": 2}, "note": None},
            expect={"lease.owner": "w2"},
        )
        is False
    )
    assert (
        store.update_if(
            "things",
            "a",
            {"id": "a", "lease": {"owner": "w1", "n": 2}, "note": None},
            expect={"lease.owner": "w1", "note": None},
        )
        is True
    )
    assert store.get("things", "a") == {"id": "a", "lease": {"owner": "w1", "n": 2}, "note": None}
    # A leased document does not match "no lease".
    assert store.update_if("things", "a", {"id": "a"}, expect={"lease.owner": None}) is False
    # A null lease, and a missing field, both match None.
    store.put("things", "b", {"id": "b", "lease": None})
    assert store.update_if("things", "b", {"id": "b", "v": 1}, expect={"lease.owner": None}) is True
    assert store.update_if("things", "b", {"id": "b", "v": 2}, expect={"absent.field": None}) is True
    assert store.get("things", "b") == {"id": "b", "v": 2}


@pytest.fixture
def numbered(store: StateStore) -> StateStore:
    for n in range(1, 6):
        store.put(
            "nums",
            f"n{n}",
            {
                "id": f"n{n}",
                "n": n,
                "parity": "odd" if n % 2 else "even",
                "meta": {"group": "ab"[n % 2]},
                "at": format_timestamp(ts(n)),
            },
        )
    return store


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", 3, {"n3"}),
        ("<", 3, {"n1", "n2"}),
        ("<=", 3, {"n1", "n2", "n3"}),
        (">", 3, {"n4", "n5"}),
        (">=", 3, {"n3", "n4", "n5"}),
        ("in", [1, 4, 9], {"n1", "n4"}),
        ("in", [], set()),
    ],
)
def test_query_operators(numbered: StateStore, op: str, value: Any, expected: set[str]) -> None:
    assert set(ids(numbered.query("nums", where=[("n", op, value)]))) == expected


def test_query_strings_dotted_fields_and_conjunctions(numbered: StateStore) -> None:
    assert set(ids(numbered.query("nums", where=[("parity", "==", "even")]))) == {"n2", "n4"}
    assert set(ids(numbered.query("nums", where=[("meta.group", "==", "b")]))) == {"n1", "n3", "n5"}
    assert set(ids(numbered.query("nums", where=[("parity", "==", "odd"), ("n", ">", 1)]))) == {"n3", "n5"}
    assert set(ids(numbered.query("nums", where=[("at", ">=", format_timestamp(ts(4)))]))) == {"n4", "n5"}
    assert numbered.query("nums", where=[("parity", "==", "none")]) == []
    assert numbered.query("empty-collection") == []


def test_query_order_by_descending_and_limit(numbered: StateStore) -> None:
    assert ids(numbered.query("nums", order_by="n")) == ["n1", "n2", "n3", "n4", "n5"]
    assert ids(numbered.query("nums", order_by="n", descending=True)) == ["n5", "n4", "n3", "n2", "n1"]
    assert ids(numbered.query("nums", order_by="at", descending=True, limit=2)) == ["n5", "n4"]
    assert ids(
        numbered.query("nums", where=[("parity", "==", "odd")], order_by="n", descending=True, limit=2)
    ) == ["n5", "n3"]
    assert len(numbered.query("nums", limit=3)) == 3
    assert numbered.query("nums", limit=0) == []


@pytest.fixture
def mixed(store: StateStore) -> StateStore:
    """Values of every filterable type in one field ``v``, and an ordering field ``r`` that is
    null in one document and absent from another."""
    docs: list[dict[str, Any]] = [
        {"id": "a", "v": None, "r": 2},
        {"id": "b", "v": "x", "r": 1},
        {"id": "c"},
        {"id": "d", "v": True, "r": True},
        {"id": "e", "v": 1, "r": "s"},
        {"id": "f", "v": 5, "r": None},
        {"id": "g", "v": "abc", "r": 1},
        {"id": "h", "v": False, "r": 1.5},
        {"id": "i", "v": 0, "r": 1},
    ]
    for doc in docs:
        store.put("mixed", doc["id"], doc)
    return store


def test_query_equal_none_matches_null_fields_only(mixed: StateStore) -> None:
    assert ids(mixed.query("mixed", where=[("v", "==", None)])) == ["a"]
    assert ids(mixed.query("mixed", where=[("v", "==", None)], order_by="r")) == ["a"]
    # Firestore's IN never matches null, even when None is among the values.
    assert ids(mixed.query("mixed", where=[("v", "in", [None, "x", 1])], order_by="r")) == ["b", "e"]
    with pytest.raises(ValueError):
        mixed.query("mixed", where=[("v", "<", None)])


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("==", True, {"d"}),
        ("==", False, {"h"}),
        ("==", 1, {"e"}),
        ("==", 0, {"i"}),
        ("==", 1.0, {"e"}),
        ("in", [True], {"d"}),
        ("in", [0, "x"], {"i", "b"}),
        (">", 3, {"f"}),
        (">=", 0, {"i", "e", "f"}),
        ("<", "b", {"g"}),
        (">", "a", {"g", "b"}),
        (">=", False, {"h", "d"}),
    ],
)
def test_query_compares_values_of_the_same_type_only(
    mixed: StateStore, op: str, value: Any, expected: set[str]
) -> None:
    # Firestore never compares across types: true is not 1, and "x" is not greater than 3.
    assert set(ids(mixed.query("mixed", where=[("v", op, value)]))) == expected


def test_order_by_leaves_out_documents_without_the_field(mixed: StateStore) -> None:
    # null < booleans < numbers < strings; ties in the order's direction of document id.
    ascending = ["f", "d", "b", "g", "i", "h", "a", "e"]
    assert ids(mixed.query("mixed", order_by="r")) == ascending
    assert ids(mixed.query("mixed", order_by="r", descending=True)) == ascending[::-1]
    assert ids(mixed.query("mixed", order_by="r", limit=3)) == ["f", "d", "b"]
    assert ids(mixed.query("mixed", where=[("v", "==", "x")], order_by="r")) == ["b"]
    assert mixed.query("mixed", where=[("id", "==", "c")], order_by="r") == []
    assert ids(mixed.query("mixed", where=[("id", "==", "c")])) == ["c"]


def test_query_in_with_many_values(store: StateStore) -> None:
    # Firestore caps IN at 30 values per query; the adapter must hide that.
    for n in range(50):
        store.put("many", f"m{n:02d}", {"id": f"m{n:02d}", "n": n, "even": n % 2 == 0})
    wanted = [*range(49, -1, -1), 7, 7, 999]  # duplicates and misses included
    assert len(store.query("many", where=[("n", "in", wanted)])) == 50
    assert ids(store.query("many", where=[("n", "in", wanted)], order_by="n", descending=True, limit=4)) == [
        "m49",
        "m48",
        "m47",
        "m46",
    ]
    assert ids(
        store.query(
            "many", where=[("even", "==", True), ("n", "in", list(range(10, 45)))], order_by="n", limit=3
        )
    ) == ["m10", "m12", "m14"]


def test_query_in_with_many_values_orders_ties_and_limits_like_one_query(store: StateStore) -> None:
    # Split IN queries are merged: ties must still break on the document id, and a limit without
    # order_by must still take the first documents by id.
    for n in range(40):
        store.put("many", f"m{n:02d}", {"id": f"m{n:02d}", "n": n, "group": n % 3})
    wanted = list(range(39, -1, -1))
    by_group = sorted(range(40), key=lambda n: (n % 3, n))
    assert ids(store.query("many", where=[("n", "in", wanted)], order_by="group")) == [
        f"m{n:02d}" for n in by_group
    ]
    assert ids(store.query("many", where=[("n", "in", wanted)], order_by="group", descending=True)) == [
        f"m{n:02d}" for n in reversed(by_group)
    ]
    assert ids(store.query("many", where=[("n", "in", wanted)], limit=5)) == [f"m{n:02d}" for n in range(5)]


def test_delete_reports_whether_it_existed(store: StateStore) -> None:
    store.put("things", "a", {"id": "a"})
    assert store.delete("things", "a") is True
    assert store.get("things", "a") is None
    assert store.delete("things", "a") is False
    assert store.create("things", "a", {"id": "a", "again": True}) is True


def test_any_json_document_round_trips(store: StateStore) -> None:
    doc = {
        "id": "odd",
        "matrix": [[1, 2], [3, [4, 5]], []],
        "keys": {
            "": 1,
            "__reserved__": 2,
            "~tilde": 3,
            "~list": [1],
            "a.b": 4,
            "x/y": 5,
            "sp ace": 6,
            "`q`": 7,
            "ünï": 8,
        },
        "wrapped": {"~int": "5"},
        "big": 2**70,
        "negative_big": -(2**66),
        "int64": 2**63 - 1,
        "float": 1.5,
        "whole_float": 2.0,
        "flags": [True, False, None],
        "text": "émoji ✓ \u0000 nul",
        "empty": {"list": [], "map": {}},
        "deep": {"a": {"b": {"c": [{"d": [[]]}]}}},
    }
    assert store.create("things", "odd", doc)
    got = store.get("things", "odd")
    assert got == doc
    assert type(got["whole_float"]) is float  # 2.0 must not come back as 2
    store.put("things", "odd", doc)
    assert store.get("things", "odd") == doc
    assert store.query("things", where=[("id", "==", "odd")]) == [doc]
    # Compare-and-set replaces the whole document, odd keys included (some dropped, some added).
    replaced = {k: v for k, v in doc.items() if k not in {"keys", "big"}}
    replaced["keys"] = {"": "kept", "new.key": [[0]]}
    assert store.update_if("things", "odd", replaced, expect={"keys.a": None, "int64": 2**63 - 1})
    assert store.get("things", "odd") == replaced


def test_values_that_are_not_json_are_type_errors(store: StateStore) -> None:
    with pytest.raises(TypeError):
        store.put("things", "a", {"id": "a", "when": object()})
    assert store.get("things", "a") is None


def test_expires_at_round_trips_exactly_and_is_queryable(store: StateStore) -> None:
    for n in range(3):
        store.put("ttl", f"t{n}", {"id": f"t{n}", "expires_at": format_timestamp(ts(n * 100 + 0.123456))})
    store.put("ttl", "never", {"id": "never", "expires_at": None})
    assert store.get("ttl", "t1") == {"id": "t1", "expires_at": "2026-01-05T12:01:40.123456Z"}
    assert store.get("ttl", "never") == {"id": "never", "expires_at": None}
    cutoff = format_timestamp(ts(150))
    assert set(ids(store.query("ttl", where=[("expires_at", "<", cutoff)]))) == {"t0", "t1"}
    assert ids(store.query("ttl", where=[("expires_at", ">=", cutoff)], order_by="expires_at")) == ["t2"]
    exact = format_timestamp(ts(100.123456))
    assert ids(store.query("ttl", where=[("expires_at", "in", [exact])])) == ["t1"]
    assert ids(store.query("ttl", where=[("expires_at", "==", exact)])) == ["t1"]
    assert store.update_if("ttl", "t1", {"id": "t1", "expires_at": None}, expect={"expires_at": exact})


@pytest.mark.parametrize(
    "raw",
    ["plain-id", "a/b/c", "..", ".", "__init__", "with space", "ünïcode/ id", "x" * 1600, "trailing.", "a~b"],
)
def test_odd_document_ids_through_safe_doc_id(store: StateStore, raw: str) -> None:
    doc_id = safe_doc_id(raw)
    assert store.create("things", doc_id, {"id": doc_id, "raw": raw})
    assert store.get("things", doc_id) == {"id": doc_id, "raw": raw}
    assert store.create("things", doc_id, {"id": doc_id, "raw": "again"}) is False
    assert ids(store.query("things")) == [doc_id]
    assert store.delete("things", doc_id) is True


def test_distinct_raw_ids_stay_distinct(store: StateStore) -> None:
    raws = ["a/b", "a_b", "a b", "a.b", "A/B"]
    for raw in raws:
        assert store.create("things", safe_doc_id(raw), {"id": safe_doc_id(raw), "raw": raw})
    assert sorted(d["raw"] for d in store.query("things")) == sorted(raws)


def race(threads_n: int, contender: Callable[[int], T], *, timeout_s: float = 60) -> list[T]:
    """Run ``contender(i)`` on ``threads_n`` threads released together; their results by ``i``.
    Any exception, or a thread still running after ``timeout_s``, fails the test."""
    barrier = threading.Barrier(threads_n)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = contender(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s)
    assert errors == []
    assert sorted(results) == list(range(threads_n)), "a contender did not finish"
    return [results[i] for i in range(threads_n)]


def test_concurrent_create_has_exactly_one_winner(store: StateStore) -> None:
    threads_n = 20
    results = race(threads_n, lambda i: store.create("races", "the-one", {"id": "the-one", "winner": i}))
    assert sorted(results) == [False] * (threads_n - 1) + [True]
    stored = store.get("races", "the-one")
    assert stored is not None and stored["winner"] == results.index(True)


def test_concurrent_compare_and_set_has_exactly_one_winner(store: StateStore) -> None:
    store.put("races", "cas", {"id": "cas", "version": 0, "by": None})
    threads_n = 8
    results = race(
        threads_n,
        lambda i: store.update_if(
            "races", "cas", {"id": "cas", "version": 1, "by": i}, expect={"version": 0}
        ),
    )
    assert results.count(True) == 1
    assert results.count(False) == threads_n - 1
    stored = store.get("races", "cas")
    assert stored is not None and stored["version"] == 1 and stored["by"] == results.index(True)


def test_concurrent_increments_lose_no_update(store: StateStore) -> None:
    store.put("counters", "c", {"id": "c", "n": 0, "by": []})
    threads_n, increments = 4, 10

    def worker(i: int) -> None:
        for _ in range(increments):
            while True:
                current = store.get("counters", "c")
                assert current is not None
                updated = {"id": "c", "n": current["n"] + 1, "by": [*current["by"], i]}
                if store.update_if("counters", "c", updated, expect={"n": current["n"]}):
                    break

    race(threads_n, worker, timeout_s=120)
    final = store.get("counters", "c")
    assert final is not None
    assert final["n"] == threads_n * increments
    assert sorted(final["by"]) == sorted(i for i in range(threads_n) for _ in range(increments))


def test_operation_counters(store: StateStore) -> None:
    before = dict(store.ops)
    store.create("things", "a", {"id": "a"})
    store.get("things", "a")
    store.query("things")
    assert store.ops["write"] - before.get("write", 0) == 1
    assert store.ops["read"] - before.get("read", 0) == 1
    assert store.ops["query"] - before.get("query", 0) == 1


# ----- typed helpers -------------------------------------------------------------------------


def test_run_create_get_and_dedupe(store: StateStore) -> None:
    run = make_run("performance-1", lease_owner="w1", expires=3600)
    assert store.create_run(run) is True
    assert store.create_run(make_run("performance-1", status=RunStatus.failed)) is False
    assert store.get_run("performance-1") == run
    assert store.get_run("missing") is None


def test_save_run_respects_the_lease_owner(store: StateStore) -> None:
    run = make_run("r1", lease_owner="w1")
    store.create_run(run)
    progressed = run.model_copy(update={"status": RunStatus.running, "attempts": 1})
    assert store.save_run(progressed, expect_owner="w2") is False
    assert store.save_run(progressed, expect_owner=None) is False
    assert store.get_run("r1") == run
    assert store.save_run(progressed, expect_owner="w1") is True
    assert store.get_run("r1") == progressed

    unleased = make_run("r2")
    store.create_run(unleased)
    done = unleased.model_copy(update={"status": RunStatus.succeeded})
    assert store.save_run(done, expect_owner="w1") is False
    assert store.save_run(done, expect_owner=None) is True
    assert store.get_run("r2") == done
    # Unconditional save, also of a run that does not exist yet.
    fresh = make_run("r3", status=RunStatus.skipped)
    assert store.save_run(fresh) is True
    assert store.get_run("r3") == fresh


def test_replace_run_compares_updated_at(store: StateStore) -> None:
    run = make_run("r1")
    store.create_run(run)
    changed = run.model_copy(update={"status": RunStatus.awaiting_approval, "updated_at": ts(5)})
    assert store.replace_run(changed, expect_updated_at=ts(1)) is False
    assert store.replace_run(changed, expect_updated_at=ts(0)) is True
    assert store.get_run("r1") == changed
    assert store.replace_run(changed, expect_updated_at=ts(0)) is False


def test_list_runs_filters_order_and_limit(store: StateStore) -> None:
    store.create_run(make_run("p1", created=1, source_event="ev-1"))
    store.create_run(make_run("p2", created=3, status=RunStatus.failed))
    store.create_run(make_run("p3", created=2, trigger_id="alert-9"))
    store.create_run(make_run("c1", task="cost", created=4, status=RunStatus.failed))

    assert [r.id for r in store.list_runs()] == ["c1", "p2", "p3", "p1"]
    assert [r.id for r in store.list_runs(task="performance")] == ["p2", "p3", "p1"]
    assert [r.id for r in store.list_runs(status=RunStatus.failed)] == ["c1", "p2"]
    assert [r.id for r in store.list_runs(status="failed", task="performance")] == ["p2"]
    assert [r.id for r in store.list_runs(trigger_id="alert-9")] == ["p3"]
    assert [r.id for r in store.list_runs(source_event="ev-1")] == ["p1"]
    assert [r.id for r in store.list_runs(limit=2)] == ["c1", "p2"]
    assert [r.id for r in store.list_runs(limit=None)] == ["c1", "p2", "p3", "p1"]
    assert store.list_runs(task="workspace") == []


def test_list_runs_created_at_the_same_instant_come_in_the_same_order(store: StateStore) -> None:
    for run_id in ("r2", "r3", "r1"):
        store.create_run(make_run(run_id, created=5))
    store.create_run(make_run("r0", created=1))
    assert [r.id for r in store.list_runs()] == ["r3", "r2", "r1", "r0"]
    assert [r.id for r in store.list_runs(limit=2)] == ["r3", "r2"]


def test_record_event_dedupes_redeliveries(store: StateStore) -> None:
    event = make_event("e1")
    assert store.record_event(event) is True
    assert store.record_event(make_event("e1", status="duplicate", received=9)) is False
    assert store.get_event("e1") == event
    updated = event.model_copy(update={"run_ids": ["performance-1"], "status": "accepted"})
    store.save_event(updated)
    assert store.get_event("e1") == updated
    assert store.get_event("missing") is None


def test_list_events_filters_and_orders(store: StateStore) -> None:
    store.record_event(make_event("e1", received=1))
    store.record_event(make_event("e2", received=3, status="rejected"))
    store.record_event(make_event("e3", received=2, source="alerts"))
    assert [e.id for e in store.list_events()] == ["e2", "e3", "e1"]
    assert [e.id for e in store.list_events(status="rejected")] == ["e2"]
    assert [e.id for e in store.list_events(source="alerts")] == ["e3"]
    assert [e.id for e in store.list_events(source="scheduled", status="accepted")] == ["e1"]
    assert [e.id for e in store.list_events(limit=1)] == ["e2"]


def test_dead_letters(store: StateStore) -> None:
    first = make_letter("d1", received=1)
    assert store.add_dead_letter(first) is True
    assert store.add_dead_letter(make_letter("d1", received=7)) is False
    assert store.add_dead_letter(make_letter("d2", received=2)) is True
    assert store.get_dead_letter("d1") == first
    assert [d.id for d in store.list_dead_letters()] == ["d2", "d1"]
    assert [d.id for d in store.list_dead_letters(limit=1)] == ["d2"]
    replayed = first.model_copy(update={"replayed_run_ids": ["performance-abc"]})
    store.save_dead_letter(replayed)
    assert store.get_dead_letter("d1") == replayed
    assert store.get_dead_letter("missing") is None


def test_lock_acquire_extend_steal_and_release(store: StateStore) -> None:
    clock = FakeClock(T0)
    assert store.acquire_lock("deploy/production", "a", now=clock.now(), ttl_seconds=30) is True
    lock = store.get_lock("deploy/production")
    assert lock is not None and lock.owner == "a" and lock.expires_at == ts(30)

    clock.advance(10)
    assert store.acquire_lock("deploy/production", "b", now=clock.now(), ttl_seconds=30) is False
    # The holder extends its lease.
    assert store.acquire_lock("deploy/production", "a", now=clock.now(), ttl_seconds=30) is True
    lock = store.get_lock("deploy/production")
    assert lock is not None and lock.owner == "a" and lock.expires_at == ts(40)

    clock.advance(29)  # t=39: still held
    assert store.acquire_lock("deploy/production", "b", now=clock.now(), ttl_seconds=30) is False
    clock.advance(2)  # t=41: expired, so b takes it over
    assert store.acquire_lock("deploy/production", "b", now=clock.now(), ttl_seconds=30) is True
    lock = store.get_lock("deploy/production")
    assert lock is not None and lock.owner == "b" and lock.acquired_at == ts(41)

    assert store.release_lock("deploy/production", "a") is False
    assert store.get_lock("deploy/production") is not None
    assert store.release_lock("deploy/production", "b") is True
    assert store.get_lock("deploy/production") is None
    assert store.release_lock("deploy/production", "b") is False
    assert store.acquire_lock("deploy/production", "a", now=clock.now(), ttl_seconds=30) is True


def test_locks_are_independent_by_name(store: StateStore) -> None:
    now = T0
    assert store.acquire_lock("deploy-staging", "a", now=now, ttl_seconds=30)
    assert store.acquire_lock("deploy-production", "b", now=now, ttl_seconds=30)
    assert store.acquire_lock("deploy-staging", "b", now=now, ttl_seconds=30) is False


def test_concurrent_lock_steal_has_one_winner(store: StateStore) -> None:
    assert store.acquire_lock("probe", "old", now=T0, ttl_seconds=1)
    later = ts(60)
    won = race(8, lambda i: store.acquire_lock("probe", f"w{i}", now=later, ttl_seconds=30))
    assert won.count(True) == 1
    lock = store.get_lock("probe")
    assert lock is not None and lock.owner == f"w{won.index(True)}"


def test_purge_expired(store: StateStore) -> None:
    store.create_run(make_run("old-run", expires=10))
    store.create_run(make_run("new-run", expires=1000))
    store.create_run(make_run("kept-run"))
    store.record_event(make_event("old-event", expires=20))
    store.record_event(make_event("new-event", expires=2000))
    store.add_dead_letter(make_letter("old-letter", expires=99))
    store.add_dead_letter(make_letter("edge-letter", expires=100))
    store.acquire_lock("a-lock", "w", now=T0, ttl_seconds=1)

    assert store.purge_expired(ts(100)) == 3
    assert store.get_run("old-run") is None
    assert store.get_event("old-event") is None
    assert store.get_dead_letter("old-letter") is None
    assert {r.id for r in store.list_runs()} == {"new-run", "kept-run"}
    assert store.get_event("new-event") is not None
    # expires_at == now is not yet expired.
    assert store.get_dead_letter("edge-letter") is not None
    # Locks expire by lease, not by retention.
    assert store.get_lock("a-lock") is not None
    assert store.purge_expired(ts(100)) == 0

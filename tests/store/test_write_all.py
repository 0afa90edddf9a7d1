"""A run's final write and its trigger's event record together (``write_all``), on both stores,
and the Firestore adapter's single-round-trip compare-and-set against the version it last saw."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from orchestra.models import EventRecord, Lease, Mode, Run, RunStatus, TriggerKind
from orchestra.store.base import EVENTS, RUNS, StateStore, Write
from orchestra.store.firestore import FirestoreStateStore

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def _run(owner: str | None) -> Run:
    return Run(
        id="probe-1",
        task="probe",
        trigger_kind=TriggerKind.scheduled,
        trigger_id="m1",
        environment="development",
        mode=Mode.analyze,
        automation_level=1,
        status=RunStatus.running,
        lease=Lease(owner=owner, expires_at=T0 + dt.timedelta(minutes=5), heartbeat_at=T0) if owner else None,
        created_at=T0,
        updated_at=T0,
    )


def _event() -> EventRecord:
    return EventRecord(
        id="scheduled:m1",
        source="scheduled",
        event_id="m1",
        kind="scheduled-task",
        status="accepted",
        reason="run probe-1 succeeded",
        run_ids=["probe-1"],
        received_at=T0,
        payload={"message_id": "m1"},
        expires_at=T0 + dt.timedelta(days=14),
    )


def test_run_and_event_record_are_written_together(store: StateStore) -> None:
    run = _run("w1")
    assert store.create_run(run)
    run.status, run.lease = RunStatus.succeeded, None
    assert store.save_run(run, expect_owner="w1", event=_event())
    stored = store.get_run("probe-1")
    assert stored is not None and stored.status == RunStatus.succeeded and stored.lease is None
    event = store.get_event("scheduled:m1")
    assert event is not None and event.run_ids == ["probe-1"]


def test_nothing_is_written_when_the_run_is_held_by_another_owner(store: StateStore) -> None:
    assert store.create_run(_run("w2"))  # taken over by w2
    run = _run("w1")
    run.status, run.lease = RunStatus.succeeded, None
    assert not store.save_run(run, expect_owner="w1", event=_event())
    stored = store.get_run("probe-1")
    assert stored is not None and stored.status == RunStatus.running and stored.lease is not None
    assert stored.lease.owner == "w2"
    assert store.get_event("scheduled:m1") is None


def test_write_all_takes_one_conditional_write(store: StateStore) -> None:
    writes = [
        Write(RUNS, "a", {"id": "a"}, expect={"v": 1}),
        Write(EVENTS, "b", {"id": "b"}, expect={"v": 1}),
    ]
    with pytest.raises(ValueError, match=r"at most one conditional write; got 2 \(runs/a, events/b\)"):
        store.write_all(writes)
    assert store.get(RUNS, "a") is None and store.get(EVENTS, "b") is None


# ----- Firestore: the remembered version ------------------------------------------------------


class _CountingReads:
    def __init__(self, store: FirestoreStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        original = store._fetch

        def counted(*args: Any) -> Any:
            self.reads += 1
            return original(*args)

        monkeypatch.setattr(store, "_fetch", counted)


@pytest.mark.emulator
def test_compare_and_set_after_own_write_reads_nothing(
    firestore_store: FirestoreStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = _CountingReads(firestore_store, monkeypatch)
    assert firestore_store.create("runs", "r1", {"id": "r1", "owner": "w1", "n": 1})
    assert firestore_store.update_if(
        "runs", "r1", {"id": "r1", "owner": "w1", "n": 2}, expect={"owner": "w1"}
    )
    assert firestore_store.update_if("runs", "r1", {"id": "r1", "n": 3}, expect={"owner": "w1"})
    assert counter.reads == 0
    assert firestore_store.get("runs", "r1") == {"id": "r1", "n": 3}  # a dropped field is deleted


@pytest.mark.emulator
def test_a_remembered_version_changed_elsewhere_is_compared_again(
    firestore_store: FirestoreStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = FirestoreStateStore(firestore_store.project)
    try:
        assert firestore_store.create("runs", "r1", {"id": "r1", "owner": "w1"})
        # Another instance takes the document over: what this adapter remembers is stale.
        assert other.update_if("runs", "r1", {"id": "r1", "owner": "w2"}, expect={"owner": "w1"})
        counter = _CountingReads(firestore_store, monkeypatch)
        assert not firestore_store.update_if(
            "runs", "r1", {"id": "r1", "owner": "w1", "n": 9}, expect={"owner": "w1"}
        )
        assert counter.reads == 1
        assert firestore_store.get("runs", "r1") == {"id": "r1", "owner": "w2"}
        # Changed elsewhere but still matching: written after one read.
        assert other.put("runs", "r2", {"id": "r2", "owner": "w1"}) is None
        assert firestore_store.update_if(
            "runs", "r2", {"id": "r2", "owner": "w1", "n": 1}, expect={"owner": "w1"}
        )
        assert other.get("runs", "r2") == {"id": "r2", "owner": "w1", "n": 1}
    finally:
        other.close()


@pytest.mark.emulator
def test_batch_with_a_stale_version_falls_back_and_still_refuses(
    firestore_store: FirestoreStateStore,
) -> None:
    other = FirestoreStateStore(firestore_store.project)
    try:
        run = _run("w1")
        assert firestore_store.create_run(run)
        taken = _run("w2")
        assert other.save_run(taken, expect_owner="w1")
        run.status, run.lease = RunStatus.succeeded, None
        assert not firestore_store.save_run(run, expect_owner="w1", event=_event())
        assert other.get_event("scheduled:m1") is None
        stored = other.get_run("probe-1")
        assert stored is not None and stored.lease is not None and stored.lease.owner == "w2"
    finally:
        other.close()


def test_create_all_writes_every_document_or_none(store: StateStore) -> None:
    claim = Write(EVENTS, "scheduled-messages:m1", {"id": "scheduled-messages:m1", "fingerprint": "f1"})
    run = Write(RUNS, "probe-1", {"id": "probe-1", "status": "running"})
    assert store.create_all([claim, run])
    assert store.get(EVENTS, claim.doc_id) == claim.data and store.get(RUNS, run.doc_id) == run.data
    # The run exists: the new claim beside it is not written either.
    other = Write(EVENTS, "scheduled-messages:m2", {"id": "scheduled-messages:m2"})
    assert not store.create_all([other, Write(RUNS, "probe-1", {"id": "probe-1", "status": "queued"})])
    assert store.get(EVENTS, other.doc_id) is None
    assert store.get(RUNS, "probe-1") == run.data

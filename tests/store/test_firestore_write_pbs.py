"""The Firestore adapter builds its write protobufs itself (``write_pb``): what it sends and what
Firestore stores must be exactly what the client library's ``set()`` gives for the same document."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import common
from google.cloud.firestore_v1.types import write as write_types
from hypothesis import given, settings
from hypothesis import strategies as st
from orchestra.clock import FakeClock
from orchestra.models import run_id_for
from orchestra.runner import Claim, Runner
from orchestra.store import firestore as firestore_module
from orchestra.store.base import EVENTS, RUNS
from orchestra.store.firestore import FirestoreStateStore, to_document, write_pb

from tests.runner.deferred_automations import deferred_registry, with_record
from tests.runner.test_deferred_claim import config, reader

PATH = "projects/p/databases/(default)/documents/runs/r1"


def library_write(path: str, doc: dict[str, Any], exists: bool | None = None) -> bytes:
    (pb,) = _helpers.pbs_for_set_no_merge(path, doc)
    if exists is not None:
        pb.current_document = common.Precondition(exists=exists)
    return write_types.Write.pb(pb).SerializeToString(deterministic=True)


def ours(path: str, doc: dict[str, Any], exists: bool | None = None) -> bytes:
    return write_pb(path, doc, exists=exists).SerializeToString(deterministic=True)


EDGE_CASES: list[dict[str, Any]] = [
    {},
    {"empty_map": {}, "empty_list": [], "nested": {"inner": {}}},
    {"z": 1, "a": {"y": [1, {"b": 2, "a": [[]]}], "x": None}, "m": "text"},
    {"flag": True, "off": False, "zero": 0, "neg": -(2**63), "max": 2**63 - 1, "f": 1.5, "nan": float("nan")},
    {"big": 2**70, "": "empty key", "~x": "escaped", "__y__": "reserved", "list": [[1, 2], [3]]},
    {"expires_at": "2026-01-05T12:00:00.123456+00:00", "when": dt.datetime(2026, 1, 5, tzinfo=dt.UTC)},
    {"bytes": b"\x00\x01", "tuple": (1, "two"), "unicode": "é—✓"},
]


@pytest.mark.parametrize("data", EDGE_CASES)
@pytest.mark.parametrize("exists", [None, False])
def test_write_equals_the_client_librarys(data: dict[str, Any], exists: bool | None) -> None:
    doc = to_document(data)
    assert ours(PATH, doc, exists) == library_write(PATH, doc, exists)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_any_json_document_encodes_as_the_client_library_does(data: dict[str, Any]) -> None:
    doc = to_document(data)
    assert ours(PATH, doc) == library_write(PATH, doc)


def test_a_replace_carries_the_update_time_precondition() -> None:
    store = FirestoreStateStore.__new__(FirestoreStateStore)
    update_time = _helpers.DatetimeWithNanoseconds(2026, 1, 5, 12, 0, 0, nanosecond=123456789, tzinfo=dt.UTC)

    class Ref:
        _document_path = PATH

    write = store._replace_if_version(Ref(), {"a": 1}, update_time)  # type: ignore[arg-type]
    assert write.current_document.update_time.seconds == int(update_time.timestamp())
    assert write.current_document.update_time.nanos == 123456789
    assert write.update.fields["a"].integer_value == 1


@pytest.mark.emulator
def test_documents_stored_for_a_run_are_those_the_client_library_stores(firestore_store, monkeypatch) -> None:
    """A run stored with its claim and event record, then its run document replaced: every
    document Firestore holds is field for field the one the library's ``set()`` stores."""
    store: FirestoreStateStore = firestore_store
    written: list[tuple[str, dict[str, Any]]] = []
    real = firestore_module.write_pb

    def spy(document_path: str, doc: dict[str, Any], *, exists: bool | None = None) -> Any:
        written.append((document_path, doc))
        return real(document_path, doc, exists=exists)

    monkeypatch.setattr(firestore_module, "write_pb", spy)
    clock = FakeClock()
    runner = Runner(config(), store, clock=clock, owner="owner-a", registry=deferred_registry())
    claim = Claim(EVENTS, "test-messages:m1", {"id": "test-messages:m1", "fingerprint": "f"}, lambda: True)
    outcome = runner.submit(dataclasses.replace(with_record(reader("m1"), clock), claim=claim))
    assert outcome.record is not None
    run_id = run_id_for("reader", "m1")
    stored_run = store.get(RUNS, run_id)
    assert stored_run is not None
    assert store.update_if(RUNS, run_id, {**stored_run, "note": "replaced"}, expect={"id": run_id})
    paths = [path for path, _ in written]
    assert len(paths) == 4 and paths.count(paths[-1]) == 2, paths

    client = store._client
    api = client._firestore_api
    prefix = f"{client._database_string}/documents/"
    for index, (path, doc) in enumerate(written):
        if index < len(written) - 1 and path == written[-1][0]:
            continue  # replaced since: only its last version is stored
        stored = api.get_document(request={"name": path}).fields
        client.document("library-writes", str(index)).set(doc)
        expected = api.get_document(request={"name": f"{prefix}library-writes/{index}"}).fields
        ours_fields = {
            key: type(value).pb(value).SerializeToString(deterministic=True) for key, value in stored.items()
        }
        library_fields = {
            key: type(value).pb(value).SerializeToString(deterministic=True)
            for key, value in expected.items()
        }
        assert ours_fields == library_fields, path
        assert ours_fields, path

"""Firestore-specific behaviour: storage format, error classification, unreachable store."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from orchestra.errors import StoreConfigError, StoreUnavailable
from orchestra.models import format_timestamp, safe_doc_id
from orchestra.store import open_store
from orchestra.store.firestore import (
    DocumentRejected,
    FirestoreStateStore,
    _is_missing_database,
    _order_key,
    firestore_doc_id,
    from_document,
    to_document,
)

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


# ----- storage format (no emulator needed) ---------------------------------------------------


def test_expires_at_becomes_a_native_timestamp_and_back() -> None:
    stamp = format_timestamp(T0 + dt.timedelta(microseconds=123456))
    doc = to_document({"id": "x", "expires_at": stamp, "nested": {"expires_at": stamp}})
    assert doc["expires_at"] == dt.datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=dt.UTC)
    # Only the top-level TTL field is converted.
    assert doc["nested"]["expires_at"] == stamp
    assert from_document(doc) == {"id": "x", "expires_at": stamp, "nested": {"expires_at": stamp}}


def test_unparseable_expires_at_is_kept_as_given() -> None:
    assert to_document({"expires_at": "soon"}) == {"expires_at": "soon"}
    assert to_document({"expires_at": None}) == {"expires_at": None}


def test_encoding_wraps_only_what_firestore_cannot_hold() -> None:
    plain = {"id": "a", "list": [1, "x", {"k": [2]}], "n": 5, "map": {"a.b": 1}}
    assert to_document(plain) == plain
    encoded = to_document({"m": [[1]], "": 1, "__x__": 2, "~t": 3, "big": 2**64})
    assert encoded == {"m": [{"~list": [1]}], "~": 1, "~__x__": 2, "~~t": 3, "big": {"~int": str(2**64)}}
    assert from_document(encoded) == {"m": [[1]], "": 1, "__x__": 2, "~t": 3, "big": 2**64}


def test_non_string_keys_convert_like_json() -> None:
    assert from_document(to_document({1: "a", None: "c", 2.5: "d"})) == {"1": "a", "null": "c", "2.5": "d"}
    assert from_document(to_document({False: "b"})) == {"false": "b"}


@pytest.mark.parametrize("raw", ["a/b", ".", "..", "__x__", "", "y" * 1501])
def test_invalid_firestore_ids_are_mapped(raw: str) -> None:
    mapped = firestore_doc_id(raw)
    assert mapped == safe_doc_id(raw)
    assert "/" not in mapped and mapped not in {".", ".."} and mapped


@pytest.mark.parametrize("valid", ["run-1", "a~b", "x.y", "ünï", "performance-0123abcd"])
def test_valid_firestore_ids_are_unchanged(valid: str) -> None:
    assert firestore_doc_id(valid) == valid


@pytest.mark.parametrize(
    ("message", "missing_database"),
    [
        ("No document to update: projects/p/databases/(default)/documents/runs/r1", False),
        ("Document projects/p/databases/db/documents/runs/r1 not found", False),
        ('no entity to update: app: "dev~p" path < Element { type: "runs" name: "r1" } >', False),
        ("The database (db-y) does not exist for project proj-x Please visit https://console", True),
        ("Database not found: projects/p/databases/db", True),
    ],
)
def test_missing_database_is_told_apart_from_a_missing_document(message: str, missing_database: bool) -> None:
    assert _is_missing_database(gexc.NotFound(message)) is missing_database


def test_merge_order_follows_firestore_type_order() -> None:
    values = ["b", 2, None, True, 1.5, "a", {"k": 1}, False]
    assert sorted(values, key=_order_key) == [None, False, True, 1.5, 2, "a", "b", {"k": 1}]


def test_importing_the_adapter_does_not_import_the_client() -> None:
    code = (
        "import sys, orchestra.store.firestore as f; "
        "assert 'google.cloud.firestore' not in sys.modules, 'client imported at module import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----- error classification -------------------------------------------------------------------


@pytest.fixture
def offline_store(monkeypatch: pytest.MonkeyPatch) -> FirestoreStateStore:
    # Nothing listens on port 1; the client never connects unless a call is made.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    return FirestoreStateStore("proj-x", "db-y", timeout_s=0.5)


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (gexc.ServiceUnavailable("down"), StoreUnavailable, "down"),
        (gexc.DeadlineExceeded("slow"), StoreUnavailable, "slow"),
        (gexc.InternalServerError("oops"), StoreUnavailable, "oops"),
        (gexc.Aborted("contention"), StoreUnavailable, "contention"),
        (gexc.ResourceExhausted("quota"), StoreUnavailable, "quota"),
        (gexc.RetryError("deadline", gexc.ServiceUnavailable("down")), StoreUnavailable, "gave up"),
        (gexc.FailedPrecondition("The query requires an index"), StoreConfigError, "composite index"),
        (gexc.PermissionDenied("no"), StoreConfigError, "roles/datastore.user"),
        (gexc.NotFound("database db-y does not exist"), StoreConfigError, "does the database exist"),
        (gexc.InvalidArgument("too big"), DocumentRejected, "document rejected"),
    ],
)
def test_google_errors_are_classified_with_context(
    offline_store: FirestoreStateStore, error: Exception, expected: type[Exception], text: str
) -> None:
    translated = offline_store._translate(error, "get", "runs", "r1")
    assert isinstance(translated, expected)
    message = str(translated)
    assert text in message
    assert "runs/r1" in message and "'proj-x'" in message and "'db-y'" in message and "get" in message


def test_rejected_queries_are_programming_errors(offline_store: FirestoreStateStore) -> None:
    translated = offline_store._translate(gexc.InvalidArgument("bad filter"), "query", "runs", None)
    assert type(translated) is ValueError and "query rejected: " in str(translated)


def test_transaction_wrapping_is_unwrapped(offline_store: FirestoreStateStore) -> None:
    # The transaction helper raises ValueError while rolling back after a failed begin.
    try:
        try:
            raise gexc.ServiceUnavailable("begin failed")
        except gexc.ServiceUnavailable:
            raise ValueError("Transaction not in progress, cannot be rolled back.") from None
    except ValueError as wrapped:
        wrapped.__context__ = gexc.ServiceUnavailable("begin failed")
        translated = offline_store._translate(wrapped, "update_if", "runs", "r1")
    assert isinstance(translated, StoreUnavailable) and "begin failed" in str(translated)


def test_unknown_errors_are_not_swallowed(offline_store: FirestoreStateStore) -> None:
    error = KeyError("bug")
    assert offline_store._translate(error, "get", "runs", "r1") is error


@pytest.mark.parametrize("operation", ["ping", "get", "create", "put", "update_if", "query", "delete"])
def test_unreachable_store_fails_fast_as_store_unavailable(
    offline_store: FirestoreStateStore, operation: str
) -> None:
    calls = {
        "ping": lambda s: s.ping(),
        "get": lambda s: s.get("runs", "r1"),
        "create": lambda s: s.create("runs", "r1", {"id": "r1"}),
        "put": lambda s: s.put("runs", "r1", {"id": "r1"}),
        "update_if": lambda s: s.update_if("runs", "r1", {"id": "r1"}, expect={}),
        "query": lambda s: s.query("runs", where=[("status", "==", "queued")]),
        "delete": lambda s: s.delete("runs", "r1"),
    }
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        calls[operation](offline_store)
    elapsed = time.monotonic() - started
    assert "'proj-x'" in str(info.value) and operation in str(info.value)
    # The library defaults would retry for 60-300 s; each call is one attempt with a 0.5 s deadline
    # (generous bound for CI).
    assert elapsed < 20, f"{operation} took {elapsed:.1f} s against a closed port"


class _OneCollectionClient:
    """Stands in for the client library: each RPC runs through the ``retry`` the adapter passed,
    as the library's transport does, and fails with UNAVAILABLE; ``rpcs`` counts the attempts."""

    def __init__(self, *, reads_ok: bool = False) -> None:
        self.reads_ok = reads_ok  # document reads answer (update_if's write meets the outage)
        self.rpcs: list[str] = []
        self.retries: list[Any] = []

    def _rpc(self, name: str, kwargs: dict[str, Any], result: Any = None, fail: bool = True) -> Any:
        self.retries.append(kwargs.get("retry", "library default"))

        def attempt() -> Any:
            self.rpcs.append(name)
            if fail:
                raise gexc.ServiceUnavailable(f"{name}: injected outage")
            return result

        return kwargs["retry"](attempt)()

    def collection(self, name: str) -> Any:
        return self

    def document(self, doc_id: str) -> Any:
        return self

    def where(self, **kwargs: Any) -> Any:
        return self

    def write_option(self, **kwargs: Any) -> object:
        return object()

    # A document read is the unary GetDocument call of the generated API client.
    _rpc_metadata = ()
    _document_path = "projects/proj-x/databases/db-y/documents/runs/r1"

    @property
    def _firestore_api(self) -> Any:
        return self

    def get_document(self, **kwargs: Any) -> Any:
        from google.cloud.firestore_v1 import _helpers
        from google.cloud.firestore_v1.types import Document

        found = Document(fields=_helpers.encode_dict(_Snapshot().to_dict()), update_time=T0)
        return self._rpc("get", kwargs, result=found, fail=not self.reads_ok)

    def get(self, **kwargs: Any) -> Any:
        return self._rpc("get", kwargs, result=_Snapshot(), fail=not self.reads_ok)

    def create(self, doc: Any, **kwargs: Any) -> None:
        self._rpc("create", kwargs)

    def set(self, doc: Any, **kwargs: Any) -> None:
        self._rpc("set", kwargs)

    def delete(self, **kwargs: Any) -> None:
        self._rpc("delete", kwargs)

    def update(self, fields: Any, **kwargs: Any) -> None:
        self._rpc("update", kwargs)

    def batch(self) -> Any:
        client = self

        class _Batch:
            def _add_write_pbs(self, writes: list[Any]) -> None:
                self.writes = writes

            def commit(self, **kwargs: Any) -> None:
                client._rpc("commit", kwargs)

        return _Batch()


class _Snapshot:
    exists = True
    update_time = T0

    def to_dict(self) -> dict[str, Any]:
        return {"id": "r1", "version": 1}


@pytest.mark.parametrize("operation", ["ping", "get", "create", "put", "update_if", "query", "delete"])
def test_every_call_is_one_attempt_the_runner_retries(operation: str) -> None:
    client = _OneCollectionClient(reads_ok=operation == "update_if")
    store = FirestoreStateStore("proj-x", "db-y", timeout_s=0.5, client=client)  # type: ignore[arg-type]
    calls = {
        "ping": lambda s: s.ping(),
        "get": lambda s: s.get("runs", "r1"),
        "create": lambda s: s.create("runs", "r1", {"id": "r1"}),
        "put": lambda s: s.put("runs", "r1", {"id": "r1"}),
        "update_if": lambda s: s.update_if("runs", "r1", {"id": "r1", "version": 2}, expect={"version": 1}),
        "query": lambda s: s.query("runs", where=[("status", "==", "queued")]),
        "delete": lambda s: s.delete("runs", "r1"),
    }
    with pytest.raises(StoreUnavailable, match="injected outage") as info:
        calls[operation](store)
    assert operation in str(info.value)
    # One attempt of the call that failed (update_if: its read, then one conditional write).
    assert client.rpcs == (["get", "commit"] if operation == "update_if" else [client.rpcs[0]])
    assert "library default" not in client.retries


def test_missing_credentials_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(StoreConfigError, match="no Google credentials for Firestore project 'p'"):
        FirestoreStateStore("p")


# ----- against the emulator --------------------------------------------------------------------


@pytest.mark.emulator
def test_ttl_field_is_stored_as_a_timestamp(firestore_store: FirestoreStateStore) -> None:
    from google.cloud import firestore

    stamp = format_timestamp(T0)
    firestore_store.put("runs", "r1", {"id": "r1", "expires_at": stamp, "created_at": stamp})
    raw = firestore.Client(project=firestore_store.project).collection("runs").document("r1").get().to_dict()
    assert raw is not None
    assert isinstance(raw["expires_at"], dt.datetime) and raw["expires_at"] == T0
    assert raw["created_at"] == stamp  # other timestamps stay sortable strings


@pytest.mark.emulator
def test_prefix_isolates_collections(firestore_store: FirestoreStateStore) -> None:
    other = FirestoreStateStore(firestore_store.project, prefix="tenant2_")
    try:
        assert firestore_store.create("runs", "r1", {"id": "r1", "who": "default"})
        assert other.create("runs", "r1", {"id": "r1", "who": "tenant2"})
        assert firestore_store.get("runs", "r1") == {"id": "r1", "who": "default"}
        assert other.query("runs") == [{"id": "r1", "who": "tenant2"}]
    finally:
        other.close()


@pytest.mark.emulator
def test_ping_and_open_store_url(firestore_emulator) -> None:
    store = open_store(f"firestore://{firestore_emulator.project}")
    try:
        assert isinstance(store, FirestoreStateStore)
        assert store.url == f"firestore://{firestore_emulator.project}/(default)"
        store.ping()
    finally:
        store.close()


@pytest.mark.emulator
def test_oversized_document_is_rejected_permanently(firestore_store: FirestoreStateStore) -> None:
    with pytest.raises(DocumentRejected, match="runs/big") as info:
        firestore_store.put("runs", "big", {"id": "big", "blob": "x" * 1_100_000})
    assert info.value.transient is False
    assert firestore_store.get("runs", "big") is None

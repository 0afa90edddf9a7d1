"""Firestore adapter (Native mode).

Uses the emulator automatically when ``FIRESTORE_EMULATOR_HOST`` is set (the client library
reads it).

Retries live in one layer, and it is not this one. Every call is a single attempt with a short
deadline (``timeout_s``): the adapter only classifies what went wrong, transient failures as
:class:`StoreUnavailable`, and the runner's policy (``runner.retry``, then the platform's
redelivery) decides whether and when to try again. The client library's own defaults would
retry for 60-300 s, and a retry here under the runner's would multiply the attempts and the time
a function spends in an outage; so every call passes an explicit retry that retries nothing
(not ``retry=None``: a query stream consults the retry's predicate when the stream breaks, and
would fail on ``None``). The one loop left is ``update_if``'s compare-and-set, which re-reads
after losing a race to another writer: contention, not an error.

Round trips. A read is one unary ``GetDocument`` call (the client's ``get`` opens a streaming
``BatchGetDocuments`` call, which costs a stream and a thread per read). The adapter remembers,
for the documents it last wrote or read (a bounded cache), the version it saw: its update time
and content. ``update_if`` on such a document compares against that content and writes with a
precondition on that update time, in one round trip; if the document changed since, the
precondition fails and the call reads and compares as usual. A version is an immutable fact
(Firestore's update time names exactly one content), so the cache can be out of date but never
wrong. ``write_all`` commits a conditional replace and plain writes in one atomic batch.

Documents are stored as given, except where Firestore cannot hold what the port accepts:

- the top-level ``expires_at`` becomes a native timestamp (TTL policies only act on those) and
  is read back as the fixed-width string ``models.format_timestamp`` produces;
- arrays directly inside arrays, integers beyond int64, and map keys Firestore reserves or
  rejects (empty, ``__x__``) are wrapped reversibly (see ``_encode``), so any JSON-compatible
  document round-trips exactly as it does in SQLite;
- document ids Firestore cannot use (``/``, ``.``, ``..``, ``__x__``, over 1500 bytes) are mapped
  through ``models.safe_doc_id``; ids that are already valid are used unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import OrchestraError, StoreConfigError, StoreUnavailable
from ..models import format_timestamp, safe_doc_id
from .base import StateStore, Where, Write, lookup, matches

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.firestore import Client, DocumentReference

TTL_FIELD = "expires_at"
DEFAULT_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 3.0
CAS_ATTEMPTS = 10
# Versions remembered for single-round-trip compare-and-set: the documents a warm instance is
# working on (runs in flight, breakers, claims); older ones just cost a read again.
VERSION_CACHE_SIZE = 2048
IN_LIMIT = 30  # values per Firestore IN filter

# Escape marker for keys and wrapped values. A user key starting with it is itself escaped, so a
# stored single-key map {"~list": ...} can only have come from _encode.
_ESC = "~"
_LIST = _ESC + "list"
_BIGINT = _ESC + "int"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FIELD_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPS = frozenset({"==", "<", "<=", ">", ">=", "in"})
_TRANSIENT_NAMES = frozenset(
    {
        "ServiceUnavailable",
        "DeadlineExceeded",
        "InternalServerError",
        "Aborted",
        "RetryError",
        "ResourceExhausted",
        "TooManyRequests",
        "BadGateway",
        "GatewayTimeout",
        "Unknown",
    }
)


def _never(exc: BaseException) -> bool:
    """Retry predicate of every call: nothing is retried here."""
    return False


class DocumentRejected(OrchestraError):
    """Firestore refused a document (too large, invalid value): retrying cannot help."""


# ----- value encoding ---------------------------------------------------------------------


def _encode_key(key: Any) -> str:
    if not isinstance(key, str):
        # Same key conversion json.dumps applies, so SQLite and Firestore agree.
        key = json.dumps(key)
    if key == "" or key.startswith(_ESC) or (key.startswith("__") and key.endswith("__")):
        return _ESC + key
    return key


def _decode_key(key: str) -> str:
    return key[1:] if key.startswith(_ESC) else key


def _encode(value: Any, *, in_array: bool = False) -> Any:
    if isinstance(value, dict):
        return {_encode_key(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_encode(v, in_array=True) for v in value]
        return {_LIST: items} if in_array else items
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
        return {_BIGINT: str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if _LIST in value:
                return [_decode(v) for v in value[_LIST]]
            if _BIGINT in value:
                return int(value[_BIGINT])
        return {_decode_key(k): _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return value


def _to_timestamp(value: Any) -> Any:
    """ISO string -> aware datetime for the TTL field; anything else unchanged."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


def to_document(data: dict[str, Any]) -> dict[str, Any]:
    doc = _encode(data)
    if TTL_FIELD in doc:
        doc[TTL_FIELD] = _to_timestamp(doc[TTL_FIELD])
    return doc


def from_document(doc: dict[str, Any]) -> dict[str, Any]:
    return _decode(doc)


# ----- write protobufs --------------------------------------------------------------------
#
# The client library builds a write through its proto-plus wrappers (a wrapper object and a
# conversion per value), which costs more CPU than the round trip it sends. The writes here are
# built on the raw protobuf classes instead, value by value in place, with the same content the
# library's ``set()`` gives: top-level and nested map keys in sorted order, maps inside arrays as
# given, and any value that is not plain JSON (a timestamp, bytes, a reference...) encoded by the
# library itself. ``tests/store/test_firestore_write_pbs.py`` holds the two equal.

_pb_classes: tuple[Any, Any] | None = None


def _pb_types() -> tuple[Any, Any]:
    """(Write, Value) raw protobuf classes, imported on first use (the client is heavy)."""
    global _pb_classes
    if _pb_classes is None:
        from google.cloud.firestore_v1.types import document, write

        _pb_classes = (write.Write.pb(), document.Value.pb())
    return _pb_classes


def _fill_value(target: Any, value: Any, *, sort_keys: bool) -> None:
    """Set the raw ``Value`` message ``target`` to ``value``'s Firestore encoding."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif value is None:
        target.null_value = 0
    elif kind is bool:
        target.boolean_value = value
    elif kind is int:
        target.integer_value = value
    elif kind is float:
        target.double_value = value
    elif kind is dict:
        map_value = target.map_value
        map_value.SetInParent()
        _fill_fields(map_value.fields, value, sort_keys=sort_keys)
    elif kind is list or kind is tuple:
        array_value = target.array_value
        array_value.SetInParent()
        values = array_value.values
        for item in value:
            _fill_value(values.add(), item, sort_keys=False)
    else:
        from google.cloud.firestore_v1 import _helpers
        from google.cloud.firestore_v1.types import document

        target.CopyFrom(document.Value.pb(_helpers.encode_value(value)))


def _fill_fields(fields: Any, data: dict[str, Any], *, sort_keys: bool) -> None:
    for key in sorted(data) if sort_keys else data:
        _fill_value(fields[key], data[key], sort_keys=sort_keys)


def _timestamp_pb(value: Any) -> Any:
    """The raw ``Timestamp`` of an update time as the client returns it (a datetime with
    nanoseconds, or already a protobuf timestamp)."""
    from google.cloud.firestore_v1 import _helpers
    from google.protobuf import timestamp_pb2

    if isinstance(value, timestamp_pb2.Timestamp):
        return value
    timestamp_pb = getattr(value, "timestamp_pb", None)
    if timestamp_pb is not None:
        return timestamp_pb()
    return _helpers._datetime_to_pb_timestamp(value)


def write_pb(document_path: str, doc: dict[str, Any], *, exists: bool | None = None) -> Any:
    """The raw ``Write`` replacing the document at ``document_path`` with ``doc`` (an encoded
    document, see ``to_document``); ``exists=False`` makes it a create."""
    write_class, _ = _pb_types()
    write = write_class()
    update = write.update
    update.name = document_path
    _fill_fields(update.fields, doc, sort_keys=True)
    if exists is not None:
        write.current_document.exists = exists
    return write


def firestore_doc_id(doc_id: str) -> str:
    """The id Firestore stores ``doc_id`` under: unchanged when valid, else ``safe_doc_id``."""
    if (
        doc_id
        and "/" not in doc_id
        and doc_id not in {".", ".."}
        and not (doc_id.startswith("__") and doc_id.endswith("__"))
        and len(doc_id.encode()) <= 1500
    ):
        return doc_id
    return safe_doc_id(doc_id)


def _check_field(field: str) -> str:
    if not all(_FIELD_PART.match(part) for part in field.split(".")):
        raise ValueError(f"unsupported field path {field!r}: use dotted identifiers such as 'lease.owner'")
    return field


def _order_key(value: Any) -> tuple[int, Any]:
    """Firestore's cross-type order (null < booleans < numbers < strings < others), for merging
    results of split queries."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True, default=str))


# ----- error mapping ----------------------------------------------------------------------


def _google_cause(exc: BaseException) -> BaseException:
    """The Google/gRPC error behind ``exc``. The transaction helper wraps failures in
    ValueError (retries exhausted, or a rollback attempted after a failed begin)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__
        if module.startswith(("google.", "grpc")):
            return current
        current = current.__cause__ or current.__context__
    return exc


def _is_missing_database(exc: BaseException) -> bool:
    # A missing database is also NOT_FOUND; it must not read as "no such document". Resource
    # paths (projects/P/databases/D/documents/...) are dropped first: they name every database.
    text = re.sub(r"projects/\S*", "", str(exc)).lower()
    return "database" in text and ("does not exist" in text or "not found" in text)


def _grpc_code_name(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:  # noqa: BLE001 - a foreign object's code() must not mask the real error
            return None
        return getattr(value, "name", None)
    return None


class FirestoreStateStore(StateStore):
    def __init__(
        self,
        project: str,
        database: str = "(default)",
        *,
        prefix: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client: Client | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.database = database
        self.prefix = prefix
        self.url = f"firestore://{project}/{database}"
        self.timeout_s = timeout_s
        # Imported here: google.cloud.firestore costs ~0.6 s, paid only by processes that use it.
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry

        self._gexc = gexc
        # One attempt per call (see the module docstring): the runner's policy retries.
        self._no_retry: Retry = gretry.Retry(predicate=_never)
        if client is None:
            client = self._new_client()
        self._client = client
        # key -> (update time, stored document) of the last version this adapter wrote or read.
        self._versions: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._versions_lock = threading.Lock()

    @property
    def emulated(self) -> bool:
        """Served by the Firestore emulator (``FIRESTORE_EMULATOR_HOST`` set): the client talks to
        nothing else, the data stays on this machine, and there are no Google accounts."""
        return bool(os.environ.get("FIRESTORE_EMULATOR_HOST"))

    def _new_client(self) -> Client:
        import google.auth.exceptions
        from google.cloud import firestore

        try:
            return firestore.Client(project=self.project, database=self.database)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise StoreConfigError(
                f"no Google credentials for Firestore project {self.project!r} database "
                f"{self.database!r}: set GOOGLE_APPLICATION_CREDENTIALS, run "
                "`gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST for the "
                f"emulator ({exc})"
            ) from None

    # ----- helpers ------------------------------------------------------------------------

    def _ref(self, collection: str, doc_id: str) -> DocumentReference:
        return self._client.collection(self.prefix + collection).document(firestore_doc_id(doc_id))

    def _key(self, collection: str, doc_id: str) -> str:
        return f"{self.prefix}{collection}/{firestore_doc_id(doc_id)}"

    def _remember(self, key: str, update_time: Any, doc: dict[str, Any]) -> None:
        if update_time is None:
            self._forget(key)
            return
        with self._versions_lock:
            self._versions[key] = (update_time, doc)
            self._versions.move_to_end(key)
            while len(self._versions) > VERSION_CACHE_SIZE:
                self._versions.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._versions_lock:
            self._versions.pop(key, None)

    def _known(self, key: str) -> tuple[Any, dict[str, Any]] | None:
        with self._versions_lock:
            return self._versions.get(key)

    def _fetch(self, ref: DocumentReference, key: str) -> tuple[Any, dict[str, Any]] | None:
        """(update time, stored document) of the current version, or None when absent: one
        unary GetDocument call (remembered for the next compare-and-set)."""
        from google.cloud.firestore_v1 import _helpers

        client = self._client
        try:
            document = client._firestore_api.get_document(
                request={"name": ref._document_path},
                metadata=client._rpc_metadata,
                retry=self._no_retry,
                timeout=self.timeout_s,
            )
        except self._gexc.NotFound as exc:
            if _is_missing_database(exc):
                raise
            self._forget(key)
            return None
        doc = _helpers.decode_dict(document.fields, client)
        self._remember(key, document.update_time, doc)
        return document.update_time, doc

    def _replace_if_version(self, ref: DocumentReference, new_doc: dict[str, Any], update_time: Any) -> Any:
        """The write that replaces the whole document with ``new_doc`` only if it is still at
        ``update_time``: a ``set`` (no field mask, so dropped fields go) carrying the update-time
        precondition the client's ``set()`` cannot take."""
        write = write_pb(ref._document_path, new_doc)
        write.current_document.update_time.CopyFrom(_timestamp_pb(update_time))
        return write

    def _commit(self, writes: list[Any]) -> list[Any]:
        batch = self._client.batch()
        batch._add_write_pbs(writes)
        return batch.commit(retry=self._no_retry, timeout=self.timeout_s)

    @contextmanager
    def _call(self, operation: str, collection: str, doc_id: str | None = None) -> Iterator[None]:
        try:
            yield
        except OrchestraError:
            raise
        except Exception as exc:  # classified below; re-raised as is when not ours
            translated = self._translate(exc, operation, collection, doc_id)
            if translated is exc:
                raise
            raise translated from exc

    def _translate(
        self, exc: Exception, operation: str, collection: str, doc_id: str | None
    ) -> BaseException:
        cause = _google_cause(exc)
        where = (
            f"Firestore {operation} on {self.prefix + collection}"
            f"{'/' + doc_id if doc_id is not None else ''} "
            f"(project {self.project!r}, database {self.database!r})"
        )
        gexc = self._gexc
        name = type(cause).__name__
        if isinstance(cause, gexc.RetryError) and cause.cause is not None:
            # Raised by the client library's own retry loops, should one still run somewhere.
            return StoreUnavailable(f"{where}: the client library gave up: {cause.cause}")
        if name in _TRANSIENT_NAMES or _grpc_code_name(cause) in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}:
            return StoreUnavailable(f"{where}: {cause}")
        if isinstance(cause, gexc.FailedPrecondition) and "index" in str(cause).lower():
            return StoreConfigError(f"{where}: the query needs a composite index: {cause}")
        if isinstance(cause, gexc.PermissionDenied | gexc.Unauthenticated):
            return StoreConfigError(
                f"{where}: access denied ({cause}); the service account needs roles/datastore.user"
            )
        if isinstance(cause, gexc.NotFound):
            return StoreConfigError(f"{where}: {cause} (does the database exist?)")
        if isinstance(cause, gexc.InvalidArgument):
            if operation == "query":
                return ValueError(f"{where}: query rejected: {cause}")
            return DocumentRejected(f"{where}: document rejected: {cause}")
        try:
            import google.auth.exceptions as gauth
        except ImportError:  # pragma: no cover - google-auth ships with the client
            return exc
        if isinstance(cause, gauth.TransportError):
            return StoreUnavailable(f"{where}: cannot reach the token endpoint: {cause}")
        if isinstance(cause, gauth.RefreshError):
            if getattr(cause, "retryable", False):
                return StoreUnavailable(f"{where}: credential refresh failed: {cause}")
            return StoreConfigError(f"{where}: credential refresh failed: {cause}")
        if isinstance(cause, gauth.DefaultCredentialsError):
            return StoreConfigError(f"{where}: no Google credentials: {cause}")
        if isinstance(exc, ValueError) and cause is exc and operation != "query":
            # The client validates documents locally (e.g. an unsupported value type).
            return DocumentRejected(f"{where}: document rejected: {exc}")
        return exc

    def _where_value(self, field: str, value: Any) -> Any:
        if field != TTL_FIELD:
            return value
        if isinstance(value, list | tuple | set | frozenset):
            return [_to_timestamp(v) for v in value]
        return _to_timestamp(value)

    # ----- primitives ---------------------------------------------------------------------

    def _create(self, collection: str, doc_id: str, data: dict[str, Any]) -> bool:
        gexc = self._gexc
        ref = self._ref(collection, doc_id)
        doc = to_document(data)
        with self._call("create", collection, doc_id):
            try:
                result = ref.create(doc, retry=self._no_retry, timeout=self.timeout_s)
            except gexc.Conflict as exc:
                # Aborted is a Conflict subclass too, but means contention, not existence.
                if isinstance(exc, gexc.Aborted):
                    raise
                return False
        self._remember(self._key(collection, doc_id), result.update_time, doc)
        return True

    def _get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._call("get", collection, doc_id):
            found = self._fetch(self._ref(collection, doc_id), self._key(collection, doc_id))
        return from_document(found[1]) if found is not None else None

    def _put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        doc = to_document(data)
        with self._call("put", collection, doc_id):
            result = self._ref(collection, doc_id).set(doc, retry=self._no_retry, timeout=self.timeout_s)
        self._remember(self._key(collection, doc_id), result.update_time, doc)

    def _update_if(self, collection: str, doc_id: str, data: dict[str, Any], expect: dict[str, Any]) -> bool:
        """Optimistic compare-and-set: compare, then replace with a precondition on the update
        time of the version compared. No transaction locks are held, so contending writers cannot
        deadlock or wait on each other; a writer that lost the race re-reads and re-compares. The
        first comparison is against the version this adapter last saw of the document, when it
        remembers one (no read); if that version is no longer current, the write is refused by
        Firestore and the loop reads it."""
        gexc = self._gexc
        ref = self._ref(collection, doc_id)
        key = self._key(collection, doc_id)
        new_doc = to_document(data)
        with self._call("update_if", collection, doc_id):
            known = self._known(key)
            for _ in range(CAS_ATTEMPTS):
                if known is None:
                    current = self._fetch(ref, key)
                    if current is None or not matches(from_document(current[1]), expect):
                        return False
                    version = current
                elif matches(from_document(known[1]), expect):
                    version = known
                else:
                    known = None  # what we saw does not match: what is there now might
                    continue
                known = None
                try:
                    (result,) = self._commit([self._replace_if_version(ref, new_doc, version[0])])
                except (gexc.FailedPrecondition, gexc.NotFound) as exc:
                    if _is_missing_database(exc):
                        raise
                    self._forget(key)
                    continue  # changed or deleted since that version: compare again
                self._remember(key, result.update_time, new_doc)
                return True
        raise StoreUnavailable(
            f"Firestore update_if on {self.prefix + collection}/{doc_id} (project {self.project!r}, "
            f"database {self.database!r}): document changed under {CAS_ATTEMPTS} consecutive attempts"
        )

    def _create_all(self, writes: Sequence[Write]) -> bool:
        """One atomic batch of creates (and puts): all are written, or (one exists) none."""
        gexc = self._gexc
        first = writes[0]
        docs = [to_document(w.data) for w in writes]
        with self._call("create", first.collection, first.doc_id):
            pbs = [
                write_pb(
                    self._ref(write.collection, write.doc_id)._document_path,
                    doc,
                    exists=None if write.put else False,
                )
                for write, doc in zip(writes, docs, strict=True)
            ]
            try:
                results = self._commit(pbs)
            except gexc.Conflict as exc:
                # Aborted is a Conflict subclass too, but means contention, not existence.
                if isinstance(exc, gexc.Aborted):
                    raise
                return False
        for write, doc, result in zip(writes, docs, results, strict=True):
            self._remember(self._key(write.collection, write.doc_id), result.update_time, doc)
        return True

    def _write_all(self, writes: Sequence[Write]) -> bool:
        """One atomic batch when the conditional write's document is remembered at a version that
        matches its condition; otherwise (or when that version is stale) the writes one by one."""
        gexc = self._gexc
        planned: list[tuple[Write, str, dict[str, Any], tuple[Any, dict[str, Any]] | None]] = []
        for write in writes:
            key = self._key(write.collection, write.doc_id)
            new_doc = to_document(write.data)
            known = None
            if write.expect is not None:
                known = self._known(key)
                if known is None or not matches(from_document(known[1]), write.expect):
                    return super()._write_all(writes)
            planned.append((write, key, new_doc, known))
        first = writes[0]
        with self._call("write_all", first.collection, first.doc_id):
            pbs = []
            for write, _, new_doc, known in planned:
                ref = self._ref(write.collection, write.doc_id)
                if known is None:
                    pbs.append(write_pb(ref._document_path, new_doc))
                else:
                    pbs.append(self._replace_if_version(ref, new_doc, known[0]))
            try:
                results = self._commit(pbs)
            except (gexc.FailedPrecondition, gexc.NotFound) as exc:
                if _is_missing_database(exc):
                    raise
                results = None  # the remembered version is stale: nothing was written
        if results is None:
            for _, key, _, known in planned:
                if known is not None:
                    self._forget(key)
            return super()._write_all(writes)
        for (_, key, new_doc, _), result in zip(planned, results, strict=True):
            self._remember(key, result.update_time, new_doc)
        return True

    def _query(
        self,
        collection: str,
        where: list[Where],
        order_by: str | None,
        descending: bool,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        filters: list[tuple[str, str, Any]] = []
        split: tuple[int, list[Any]] | None = None
        for field, op, value in where:
            if op not in _OPS:
                raise ValueError(f"unsupported query operator {op!r}; accepted: {sorted(_OPS)}")
            value = self._where_value(field, value)
            if op == "in":
                value = list(value)
                if not value:
                    return []  # Firestore rejects an empty IN; it matches nothing anyway
                if len(value) > IN_LIMIT:
                    if split is not None:
                        raise ValueError(
                            f"at most one 'in' filter may have more than {IN_LIMIT} values "
                            f"(Firestore limit); got several in {where!r}"
                        )
                    split = (len(filters), value)
            filters.append((_check_field(field), op, value))
        if order_by:
            _check_field(order_by)
        if split is None:
            return [doc for _, doc in self._run_query(collection, filters, order_by, descending, limit)]
        # Firestore caps IN at 30 values: run one query per slice (each with the limit, so the
        # merged top-N is exact) and merge them as a single query would have returned them.
        position, values = split
        merged: dict[str, dict[str, Any]] = {}
        for start in range(0, len(values), IN_LIMIT):
            part = list(filters)
            part[position] = (part[position][0], "in", values[start : start + IN_LIMIT])
            merged.update(self._run_query(collection, part, order_by, descending, limit))
        # Ties break on the document id in the order's direction; without order_by, by id.
        if order_by:
            keys = sorted(
                merged, key=lambda i: (_order_key(lookup(merged[i], order_by)), i), reverse=descending
            )
        else:
            keys = sorted(merged)
        docs = [merged[i] for i in keys]
        return docs[:limit] if limit is not None else docs

    def _run_query(
        self,
        collection: str,
        filters: list[tuple[str, str, Any]],
        order_by: str | None,
        descending: bool,
        limit: int | None,
    ) -> list[tuple[str, dict[str, Any]]]:
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        query: Any = self._client.collection(self.prefix + collection)
        for field, op, value in filters:
            query = query.where(filter=FieldFilter(field, op, value))
        if order_by:
            direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
            query = query.order_by(order_by, direction=direction)
        if limit is not None:
            query = query.limit(limit)
        with self._call("query", collection):
            snaps = query.get(retry=self._no_retry, timeout=self.timeout_s)
            return [(s.id, from_document(s.to_dict() or {})) for s in snaps]

    def _delete(self, collection: str, doc_id: str) -> bool:
        gexc = self._gexc
        ref = self._ref(collection, doc_id)
        self._forget(self._key(collection, doc_id))
        with self._call("delete", collection, doc_id):
            try:
                # One RPC: the precondition makes Firestore tell us whether it existed.
                ref.delete(
                    option=self._client.write_option(exists=True),
                    retry=self._no_retry,
                    timeout=self.timeout_s,
                )
            except gexc.NotFound as exc:
                if _is_missing_database(exc):
                    raise
                return False
        return True

    def ping(self) -> None:
        with self._call("ping", "_health", "ping"):
            self._ref("_health", "ping").get(
                retry=self._no_retry, timeout=min(self.timeout_s, PING_TIMEOUT_S)
            )

    def close(self) -> None:
        self._client.close()

"""The ``StateStore`` port.

Adapters implement a handful of document primitives (create-if-absent, get, put,
compare-and-set, query, delete); the typed operations the runner uses are written once here on
top of them, so SQLite and Firestore behave identically and one contract suite covers both.

Documents are JSON-compatible dicts; timestamps are fixed-width UTC ISO strings (they sort as
strings). Adapters may convert ``expires_at`` to a native timestamp (Firestore TTL needs one).
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..models import DeadLetter, EventRecord, Run, RunStatus, Timestamp, format_timestamp

Op = Literal["==", "<", "<=", ">", ">=", "in"]
Where = tuple[str, Op, Any]

RUNS = "runs"
EVENTS = "events"
BREAKERS = "breakers"
DEAD_LETTERS = "dead_letters"
LOCKS = "locks"

# The core's collections whose documents carry ``expires_at`` (Firestore TTL policies are set on
# these). Automations add their own (``Automation.collections``; ``Registry.collections()``).
TTL_COLLECTIONS = (RUNS, EVENTS, DEAD_LETTERS)


@dataclass(frozen=True)
class Write:
    """One write of :meth:`StateStore.write_all`: a plain put, or (with ``expect``) a replace
    only if the stored document matches, as ``update_if``. In :meth:`StateStore.create_all` a
    write is a create, or (``put``) a plain put committed with the creates."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    expect: dict[str, Any] | None = None
    put: bool = False


class Lock(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    owner: str
    acquired_at: Timestamp
    expires_at: Timestamp


class RunPage(BaseModel):
    """A page of runs and the cursor of the next one (None on the last page)."""

    # Built when first used (listing runs), not by every process importing the store.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    runs: list[Run]
    next: str | None = None


_CURSOR_SEPARATOR = "~"
_CURSOR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def encode_run_cursor(run: Run) -> str:
    """The position just after ``run`` in the newest-first order of runs."""
    return f"{format_timestamp(run.created_at)}{_CURSOR_SEPARATOR}{run.id}"


def decode_run_cursor(cursor: str) -> tuple[str, str]:
    """(created_at, run id) of a cursor from :func:`encode_run_cursor`; InputError otherwise."""
    stamp, sep, run_id = cursor.partition(_CURSOR_SEPARATOR)
    if not sep or not _CURSOR_TIME.match(stamp) or not run_id or len(cursor) > 600:
        raise InputError(
            "not a page cursor; accepted: the value of a 'next page' link (TIMESTAMP~RUN_ID)",
            where="after",
        )
    return stamp, run_id


def _run_filters(
    task: str | None,
    status: RunStatus | str | None,
    trigger_id: str | None,
    source_event: str | None,
    environment: str | None,
    trigger_kind: str | None,
) -> list[Where]:
    where: list[Where] = []
    for field, value in (
        ("task", task),
        ("status", status),
        ("trigger_id", trigger_id),
        ("source_event", source_event),
        ("environment", environment),
        ("trigger_kind", trigger_kind),
    ):
        if value:
            where.append((field, "==", str(value)))
    return where


def lookup(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(doc: dict[str, Any], expect: dict[str, Any]) -> bool:
    return all(lookup(doc, key) == value for key, value in expect.items())


class StateStore(ABC):
    """Port for run state, events, breakers, dead letters and locks."""

    url: str

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    # ----- primitives (adapters implement the underscored versions) -----
    def create(self, collection: str, doc_id: str, data: dict[str, Any]) -> bool:
        """Write only if absent; atomic. Returns False when the document already exists."""
        self.ops["write"] += 1
        return self._create(collection, doc_id, data)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        self.ops["read"] += 1
        return self._get(collection, doc_id)

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.ops["write"] += 1
        self._put(collection, doc_id, data)

    def update_if(
        self, collection: str, doc_id: str, data: dict[str, Any], *, expect: dict[str, Any]
    ) -> bool:
        """Replace the document only if it exists and every ``expect`` field (dotted path) equals
        the given value; atomic. Returns False otherwise."""
        self.ops["write"] += 1
        return self._update_if(collection, doc_id, data, expect)

    def query(
        self,
        collection: str,
        *,
        where: Sequence[Where] = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Documents matching every filter, with Firestore's semantics in every adapter: a
        filter value (None, bool, number or string) matches only values of its own type;
        ``== None`` matches null fields, never absent ones, and ``in`` never matches null.
        ``order_by`` leaves out documents without the field, orders null < booleans < numbers
        < strings, and breaks ties on the document id in the same direction."""
        self.ops["query"] += 1
        return self._query(collection, list(where), order_by, descending, limit)

    def delete(self, collection: str, doc_id: str) -> bool:
        self.ops["write"] += 1
        return self._delete(collection, doc_id)

    def write_all(self, writes: Sequence[Write]) -> bool:
        """Write ``writes``, of which at most one is conditional (``expect``): nothing is written
        when its condition fails (returns False). Adapters that can commit them as one atomic
        batch do (Firestore, in one round trip); otherwise the conditional write goes first and
        the plain ones follow it."""
        if not writes:
            return True
        conditional = [w for w in writes if w.expect is not None]
        if len(conditional) > 1:
            raise ValueError(
                f"write_all takes at most one conditional write; got {len(conditional)} "
                f"({', '.join(f'{w.collection}/{w.doc_id}' for w in conditional)})"
            )
        self.ops["write"] += len(writes)
        return self._write_all(writes)

    def create_all(self, writes: Sequence[Write]) -> bool:
        """Create every document only if none of them exists (``expect`` is not used); writes
        marked ``put`` are written with them, whatever exists, and only if the creates are.
        Returns False when one exists; then what was written is up to the adapter (Firestore and
        SQLite write nothing; callers must not count on either and create each one again if
        needed)."""
        if not writes:
            return True
        if all(w.put for w in writes):
            raise ValueError("create_all needs at least one write to create; all were marked put")
        self.ops["write"] += len(writes)
        return self._create_all(writes)

    def _create_all(self, writes: Sequence[Write]) -> bool:
        created = all([self._create(w.collection, w.doc_id, w.data) for w in writes if not w.put])
        if created:
            for w in writes:
                if w.put:
                    self._put(w.collection, w.doc_id, w.data)
        return created

    def _write_all(self, writes: Sequence[Write]) -> bool:
        for write in sorted(writes, key=lambda w: w.expect is None):
            if write.expect is None:
                self._put(write.collection, write.doc_id, write.data)
            elif not self._update_if(write.collection, write.doc_id, write.data, write.expect):
                return False
        return True

    @abstractmethod
    def _create(self, collection: str, doc_id: str, data: dict[str, Any]) -> bool: ...

    @abstractmethod
    def _get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None: ...

    @abstractmethod
    def _update_if(
        self, collection: str, doc_id: str, data: dict[str, Any], expect: dict[str, Any]
    ) -> bool: ...

    @abstractmethod
    def _query(
        self,
        collection: str,
        where: list[Where],
        order_by: str | None,
        descending: bool,
        limit: int | None,
    ) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _delete(self, collection: str, doc_id: str) -> bool: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be used right now."""

    def close(self) -> None:
        pass

    # ----- runs -----
    def create_run(self, run: Run) -> bool:
        return self.create(RUNS, run.id, run.model_dump(mode="json"))

    def get_run(self, run_id: str) -> Run | None:
        doc = self.get(RUNS, run_id)
        return Run.model_validate(doc) if doc else None

    def save_run(
        self,
        run: Run,
        *,
        expect_owner: str | None | Literal[False] = False,
        event: EventRecord | None = None,
    ) -> bool:
        """Write a run. With ``expect_owner`` (a lease owner, or None for 'no lease'), only if the
        stored run is still held by that owner: a run taken over by recovery is never clobbered.
        ``event`` (an event record) is written with the run, in the same commit where the store
        can, and only if the run is."""
        data = run.model_dump(mode="json")
        expect = None if expect_owner is False else {"lease.owner": expect_owner}
        if event is not None:
            return self.write_all(
                [Write(RUNS, run.id, data, expect), Write(EVENTS, event.id, event.model_dump(mode="json"))]
            )
        if expect is None:
            self.put(RUNS, run.id, data)
            return True
        return self.update_if(RUNS, run.id, data, expect=expect)

    def replace_run(self, run: Run, *, expect_updated_at: dt.datetime) -> bool:
        """Compare-and-set on ``updated_at``: for changes made without holding a lease."""
        return self.update_if(
            RUNS,
            run.id,
            run.model_dump(mode="json"),
            expect={"updated_at": format_timestamp(expect_updated_at)},
        )

    def list_runs(
        self,
        *,
        task: str | None = None,
        status: RunStatus | str | None = None,
        trigger_id: str | None = None,
        source_event: str | None = None,
        environment: str | None = None,
        trigger_kind: str | None = None,
        limit: int | None = 50,
    ) -> list[Run]:
        where = _run_filters(task, status, trigger_id, source_event, environment, trigger_kind)
        docs = self.query(RUNS, where=where, order_by="created_at", descending=True, limit=limit)
        return [Run.model_validate(d) for d in docs]

    def list_runs_page(
        self,
        *,
        task: str | None = None,
        status: RunStatus | str | None = None,
        trigger_id: str | None = None,
        environment: str | None = None,
        trigger_kind: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        """One page of runs, newest first (ties on the run id, descending), and the cursor of the
        next page: pass ``RunPage.next`` as ``after``. The page is read with a range on
        ``created_at`` (no offset), so a page deep in a long history costs what the first does."""
        if limit < 1:
            raise InputError(f"page size {limit} is too small; accepted: 1 or more", where="limit")
        where = _run_filters(task, status, trigger_id, None, environment, trigger_kind)
        position = decode_run_cursor(after) if after else None
        if position is not None:
            where.append(("created_at", "<=", position[0]))
        skipped = 0
        while True:
            wanted = limit + 1 + skipped
            docs = self.query(RUNS, where=where, order_by="created_at", descending=True, limit=wanted)
            skipped = 0
            if position is not None:
                # Runs created at the cursor's instant that sort before it were on earlier pages.
                for doc in docs:
                    if doc.get("created_at") == position[0] and str(doc.get("id")) >= position[1]:
                        skipped += 1
                    else:
                        break
            rest = docs[skipped:]
            if len(rest) > limit or len(docs) < wanted:
                break
        runs = [Run.model_validate(d) for d in rest[:limit]]
        following = encode_run_cursor(runs[-1]) if len(rest) > limit else None
        return RunPage(runs=runs, next=following)

    # ----- events -----
    def record_event(self, event: EventRecord) -> bool:
        """Create the event record; False if one with this id exists (a redelivery)."""
        return self.create(EVENTS, event.id, event.model_dump(mode="json"))

    def save_event(self, event: EventRecord) -> None:
        self.put(EVENTS, event.id, event.model_dump(mode="json"))

    def get_event(self, event_id: str) -> EventRecord | None:
        doc = self.get(EVENTS, event_id)
        return EventRecord.model_validate(doc) if doc else None

    def list_events(
        self, *, status: str | None = None, source: str | None = None, limit: int | None = 50
    ) -> list[EventRecord]:
        where: list[Where] = []
        if status:
            where.append(("status", "==", status))
        if source:
            where.append(("source", "==", source))
        docs = self.query(EVENTS, where=where, order_by="received_at", descending=True, limit=limit)
        return [EventRecord.model_validate(d) for d in docs]

    # ----- dead letters -----
    def add_dead_letter(self, letter: DeadLetter) -> bool:
        return self.create(DEAD_LETTERS, letter.id, letter.model_dump(mode="json"))

    def save_dead_letter(self, letter: DeadLetter) -> None:
        self.put(DEAD_LETTERS, letter.id, letter.model_dump(mode="json"))

    def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        doc = self.get(DEAD_LETTERS, letter_id)
        return DeadLetter.model_validate(doc) if doc else None

    def list_dead_letters(self, *, limit: int | None = 50) -> list[DeadLetter]:
        docs = self.query(DEAD_LETTERS, order_by="received_at", descending=True, limit=limit)
        return [DeadLetter.model_validate(d) for d in docs]

    # ----- locks (leases on a name: deployment per environment, half-open probes) -----
    def acquire_lock(self, name: str, owner: str, *, now: dt.datetime, ttl_seconds: float) -> bool:
        lock = Lock(
            name=name, owner=owner, acquired_at=now, expires_at=now + dt.timedelta(seconds=ttl_seconds)
        )
        data = lock.model_dump(mode="json")
        if self.create(LOCKS, name, data):
            return True
        current = self.get(LOCKS, name)
        if current is None:
            return self.create(LOCKS, name, data)
        held = Lock.model_validate(current)
        if held.owner != owner and held.expires_at > now:
            return False
        # Expired, or ours to extend: compare-and-set against exactly what we read.
        return self.update_if(
            LOCKS, name, data, expect={"owner": held.owner, "expires_at": current["expires_at"]}
        )

    def release_lock(self, name: str, owner: str) -> bool:
        current = self.get(LOCKS, name)
        if current is None or current.get("owner") != owner:
            return False
        return self.delete(LOCKS, name)

    def get_lock(self, name: str) -> Lock | None:
        doc = self.get(LOCKS, name)
        return Lock.model_validate(doc) if doc else None

    # ----- retention -----
    def purge_expired(self, now: dt.datetime, collections: Sequence[str] = ()) -> int:
        """Delete documents whose ``expires_at`` has passed, in the core's collections and in
        ``collections`` (those the automations declare). Firestore TTL does this in the cloud;
        SQLite relies on this sweep."""
        removed = 0
        for collection in dict.fromkeys([*TTL_COLLECTIONS, *collections]):
            for doc in self.query(collection, where=[("expires_at", "<", format_timestamp(now))]):
                if self.delete(collection, doc["id"]):
                    removed += 1
        return removed

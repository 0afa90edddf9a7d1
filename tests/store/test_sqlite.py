"""SQLite-specific behaviour: store location problems and several processes on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from orchestra.errors import StoreConfigError
from orchestra.store import open_store
from orchestra.store.sqlite import SqliteStateStore


def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    store = SqliteStateStore(path)
    try:
        assert store.create("things", "x", {"id": "x"})
        assert path.is_file()
    finally:
        store.close()


def test_open_store_url_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel/state.db")
    absolute = open_store(f"sqlite:///{tmp_path / 'abs' / 'state.db'}")
    try:
        assert isinstance(relative, SqliteStateStore) and isinstance(absolute, SqliteStateStore)
        relative.put("things", "x", {"id": "x"})
        absolute.put("things", "y", {"id": "y"})
        assert (tmp_path / "rel" / "state.db").is_file()
        assert (tmp_path / "abs" / "state.db").is_file()
    finally:
        relative.close()
        absolute.close()


def test_a_directory_as_store_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="is a directory"):
        SqliteStateStore(tmp_path)


def test_a_garbage_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not an sqlite database, just bytes \x00\xff" * 200)
    with pytest.raises(StoreConfigError) as info:
        SqliteStateStore(path)
    message = str(info.value)
    assert str(path) in message and "not a database" in message


def test_a_file_where_the_directory_should_be_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with pytest.raises(StoreConfigError, match="cannot create the store directory"):
        SqliteStateStore(blocker / "state.db")


def test_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    first.put("things", "x", {"id": "x", "v": 1})
    first.close()
    second = SqliteStateStore(path)
    try:
        assert second.get("things", "x") == {"id": "x", "v": 1}
    finally:
        second.close()


_WRITER = textwrap.dedent(
    """
    import datetime as dt
    import sys

    from orchestra.models import Mode, Run, TriggerKind
    from orchestra.store.sqlite import SqliteStateStore

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = SqliteStateStore(path)
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other writer
    created = 0
    for i in range(count):
        at = t0 + dt.timedelta(seconds=i)
        run = Run(id=f"{name}-{i}", task="performance", trigger_kind=TriggerKind.manual,
                  trigger_id=f"{name}-{i}", environment="development", mode=Mode.analyze,
                  automation_level=1, created_at=at, updated_at=at)
        created += store.create_run(run)
        # Mix in compare-and-set writes, which take the write lock explicitly.
        assert store.save_run(run.model_copy(update={"attempts": 1}), expect_owner=None)
    store.close()
    print("created", created, flush=True)
    """
)


def test_two_processes_write_one_file_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "state.db"
    SqliteStateStore(path).close()  # create the schema once, as a deployed store would have it
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outputs = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "created 200"
    store = SqliteStateStore(path)
    try:
        runs = store.list_runs(limit=None)
        assert len(runs) == 400
        assert {r.id for r in runs} == {f"{n}-{i}" for n in ("alpha", "beta") for i in range(200)}
        assert all(r.attempts == 1 for r in runs)
    finally:
        store.close()


def test_in_filter_with_thousands_of_values_of_mixed_types(tmp_path: Path) -> None:
    # Values are grouped by type into one IN list each, so the SQL expression stays shallow
    # (SQLite refuses expression trees deeper than 1000).
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        for n in range(5):
            store.put("things", f"n{n}", {"id": f"n{n}", "v": n})
        store.put("things", "s", {"id": "s", "v": "3"})
        store.put("things", "t", {"id": "t", "v": True})
        wanted: list[object] = [*range(1000, 4000), 2, "3", None, True]
        assert {d["id"] for d in store.query("things", where=[("v", "in", wanted)])} == {"n2", "s", "t"}
    finally:
        store.close()


def test_filter_values_that_are_not_scalars_are_rejected(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        with pytest.raises(ValueError, match="unsupported filter value"):
            store.query("things", where=[("v", "==", {"k": 1})])
    finally:
        store.close()


def test_an_empty_file_is_refused_not_turned_into_a_new_history(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    with pytest.raises(StoreConfigError) as info:
        SqliteStateStore(path)
    message = str(info.value)
    assert str(path) in message and "empty file (0 bytes)" in message and "\n" not in message
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]  # no WAL files either


def test_another_applications_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (name TEXT, secret TEXT)")
    conn.execute("INSERT INTO accounts VALUES ('alice', 'hunter2')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreConfigError) as info:
        SqliteStateStore(path)
    message = str(info.value)
    assert str(path) in message and "without the Orchestra schema" in message
    assert "hunter2" not in message and "accounts" not in message  # nothing of its content
    assert path.read_bytes() == before  # not switched to WAL, no table added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_text_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("password = hunter2\n" * 50)
    with pytest.raises(StoreConfigError) as info:
        SqliteStateStore(path)
    assert str(path) in str(info.value) and "hunter2" not in str(info.value)


def test_a_new_store_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]
    again = SqliteStateStore(tmp_path / "state.db")  # an existing store of ours opens
    again.close()


def test_first_use_by_many_at_once_creates_one_store(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.db"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    stores: list[SqliteStateStore] = []

    def first_use(i: int) -> None:
        barrier.wait()
        try:
            store = SqliteStateStore(path)
            store.put("things", f"t{i}", {"id": f"t{i}"})
            stores.append(store)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert {d["id"] for d in stores[0].query("things")} == {f"t{i}" for i in range(8)}
    finally:
        for store in stores:
            store.close()
    # One store, no temporary file left behind (WAL files belong to connections still open).
    assert {p.name for p in path.parent.iterdir()} <= {"state.db", "state.db-wal", "state.db-shm"}

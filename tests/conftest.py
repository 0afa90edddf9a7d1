"""Session-wide fixtures: the Google Cloud emulators and the state stores.

Emulators start lazily, once per session, only when a test asks for them; if one cannot start,
the tests that need it fail with the emulator's log tail (never skipped). They are always
stopped at the end of the session, including on failure or interrupt.

Fixtures:
- ``firestore_emulator`` (session): EmulatorInfo; sets FIRESTORE_EMULATOR_HOST for the session.
- ``pubsub_emulator`` (session): EmulatorInfo; sets PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID.
- ``firestore_store``: a FirestoreStateStore on an emptied emulator database.
- ``sqlite_store``: a SqliteStateStore in the test's tmp_path.
- ``store``: parametrized over both, for contract tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The harness lives beside this file; make it importable whatever pytest's import mode is.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from emulators import (  # noqa: E402
    EmulatorError,
    EmulatorInfo,
    EmulatorProcess,
    clear_firestore,
    firestore_argv,
    install_sigterm_cleanup,
    pubsub_argv,
    start_emulator,
    stop_all,
)
from hypothesis import settings  # noqa: E402
from orchestra.store.base import StateStore  # noqa: E402

# The fuzz suites search the same examples on every run so the gate is repeatable;
# `HYPOTHESIS_PROFILE=explore make test` searches new ones (and keeps what fails in .hypothesis/).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

EMULATOR_PROJECT = "orchestra-test"


def _start_or_fail(name: str, argv: Callable[[str], list[str]], log_dir: Path) -> EmulatorProcess:
    install_sigterm_cleanup()
    try:
        return start_emulator(name, argv, project=EMULATOR_PROJECT, log_dir=log_dir)
    except EmulatorError as exc:
        failure = str(exc)
    # Outside the except block, so the report shows the emulator log, not a chained traceback.
    pytest.fail(f"the {name} emulator did not start: {failure}", pytrace=False)


@pytest.fixture(scope="session")
def emulator_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulators")


@pytest.fixture(scope="session")
def firestore_emulator(emulator_log_dir: Path) -> Iterator[EmulatorInfo]:
    emulator = _start_or_fail("firestore", firestore_argv, emulator_log_dir)
    env = pytest.MonkeyPatch()
    env.setenv("FIRESTORE_EMULATOR_HOST", emulator.info.host_port)
    try:
        yield emulator.info
    finally:
        env.undo()
        emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_log_dir: Path) -> Iterator[EmulatorInfo]:
    emulator = _start_or_fail("pubsub", pubsub_argv(EMULATOR_PROJECT), emulator_log_dir)
    env = pytest.MonkeyPatch()
    env.setenv("PUBSUB_EMULATOR_HOST", emulator.info.host_port)
    env.setenv("PUBSUB_PROJECT_ID", EMULATOR_PROJECT)
    try:
        yield emulator.info
    finally:
        env.undo()
        emulator.stop()


@pytest.fixture
def firestore_store(firestore_emulator: EmulatorInfo) -> Iterator[StateStore]:
    from orchestra.store.firestore import FirestoreStateStore

    clear_firestore(firestore_emulator)
    store = FirestoreStateStore(project=firestore_emulator.project)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[StateStore]:
    from orchestra.store.sqlite import SqliteStateStore

    store = SqliteStateStore(tmp_path / "state.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(request: pytest.FixtureRequest) -> StateStore:
    return request.getfixturevalue(f"{request.param}_store")


def pytest_unconfigure(config: pytest.Config) -> None:
    # Session fixtures have already stopped their emulators; this catches anything left by an
    # interrupted setup.
    stop_all()

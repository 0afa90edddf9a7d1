from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from orchestra.store.sqlite import SqliteStateStore


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        yield store
    finally:
        store.close()

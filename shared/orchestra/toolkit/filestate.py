"""File changes that can be undone from stored data alone.

``prepare`` records the file's previous content (or its absence) in the action's rollback data;
``apply`` writes atomically and records the hash of what it wrote. ``rollback`` puts the old
content back when the file is still exactly what we wrote; if someone changed it since, only
our own change is reverted (through a caller-supplied function), so their edit survives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..actuators.cloud_run_yaml import read_document_or_none


def sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def read_or_none(path: str | Path) -> str | None:
    """The file's text, None when there is no file: a regular UTF-8 file within the document
    size limit (its content is kept as rollback data), InputError otherwise."""
    return read_document_or_none(path)


def snapshot(path: str | Path) -> dict[str, Any]:
    content = read_or_none(path)
    return {"path": str(path), "existed": content is not None, "content": content, "sha256": sha256(content)}


def atomic_write(path: str | Path, text: str) -> str:
    """Write via a temporary file in the same directory and rename: readers never see half a
    file, and a crash leaves either the old or the new version. Returns the content hash."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256(text) or ""


def restore(
    before: dict[str, Any],
    written_sha256: str | None,
    revert_own_change: Callable[[str], str | None],
) -> str:
    """Undo one recorded write; safe to call twice. Returns what was done (for the record)."""
    path = Path(before["path"])
    current = read_or_none(path)
    previous = before.get("content")
    if current == previous:
        return "unchanged"
    if written_sha256 is None or sha256(current) == written_sha256:
        if previous is None:
            path.unlink(missing_ok=True)
            return "removed (did not exist before)"
        atomic_write(path, previous)
        return "restored previous content"
    if current is None:
        return "file removed since; nothing to revert"
    reverted = revert_own_change(current)
    if reverted is None:
        path.unlink(missing_ok=True)
        return "removed (nothing left after reverting our change)"
    atomic_write(path, reverted)
    return "reverted our change only (file was edited since)"

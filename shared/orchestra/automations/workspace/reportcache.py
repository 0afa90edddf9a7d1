"""The analysis caches: JSON objects in ``$GIT_COMMON_DIR/orchestra/``, shared by all worktrees.

A cache is only ever an optimisation: a missing, unreadable or damaged file reads as no cache,
and a repository where it cannot be written simply keeps none.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .repo import RepoInfo


def cache_file(info: RepoInfo, name: str) -> Path:
    return Path(info.common_dir) / "orchestra" / name


def read_cache(path: Path) -> dict[str, Any] | None:
    """The cached object; None when the file is missing, unreadable or not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_cache(path: Path, data: dict[str, Any], what: str) -> str | None:
    """Replace ``path`` atomically (a concurrent reader sees the old file or the new one);
    returns why ``what`` was not written, or None."""
    tmp = None
    try:
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            # dumps, not dump: only the one-shot encoder is the C one (dump encodes in Python).
            handle.write(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return f"{what} not written ({exc.strerror or exc})"
    return None

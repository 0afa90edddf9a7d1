"""Ignored cache directories in the work tree that tools regenerate (``__pycache__``, …).

Only directories git itself reports as ignored (``git ls-files -o -i --exclude-standard
--directory``) are candidates, so nothing tracked or merely untracked is ever proposed. A pattern
with a slash (``node_modules/.cache``) also matches inside an ignored directory that git reports
collapsed (``node_modules/``).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from .gitio import Git, decode_path


def dir_size(path: str) -> tuple[int, int]:
    """(bytes, files) under ``path`` without following symlinks."""
    total = files = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                            files += 1
                    except OSError:
                        continue
        except OSError:
            continue
    return total, files


def _matches(relative: str, patterns: list[str], toplevel: str) -> list[str]:
    """Candidate directories (relative paths) for one ignored path reported by git."""
    parts = relative.split("/")
    found: list[str] = []
    for pattern in patterns:
        pieces = pattern.strip("/").split("/")
        # The whole pattern matches the end of the ignored directory's path.
        if len(parts) >= len(pieces) and all(
            fnmatch.fnmatchcase(p, q) for p, q in zip(parts[-len(pieces) :], pieces, strict=True)
        ):
            found.append(relative)
            continue
        # The ignored directory is a prefix of the pattern (collapsed by --directory): look inside.
        for k in range(1, len(pieces)):
            if len(parts) >= k and all(
                fnmatch.fnmatchcase(p, q) for p, q in zip(parts[-k:], pieces[:k], strict=True)
            ):
                inner = "/".join([relative, *pieces[k:]])
                if not _is_glob(inner) and Path(toplevel, inner).is_dir():
                    found.append(inner)
                break
    return found


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def find_cache_dirs(git: Git, toplevel: str | None, patterns: list[str]) -> list[dict[str, object]]:
    """[{path, size_bytes, files, pattern}] for ignored directories matching ``patterns``."""
    if toplevel is None or not patterns:
        return []
    raw = git.run("ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory")
    found: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if not item.endswith(b"/"):
            continue  # ignored files are not cache directories
        relative = decode_path(item[:-1])
        for candidate in _matches(relative, patterns, toplevel):
            found.setdefault(candidate, relative)
    results: list[dict[str, object]] = []
    root = os.path.realpath(toplevel)
    for relative in sorted(found):
        absolute = os.path.join(toplevel, relative)
        if os.path.islink(absolute) or not os.path.realpath(absolute).startswith(root + os.sep):
            continue  # never follow a link out of the work tree
        size, files = dir_size(absolute)
        results.append({"path": relative, "size_bytes": size, "files": files})
    return results

"""Helpers to build real git repositories in tests."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

MIB = 1024 * 1024


def git(repo: Path | str, *args: str, input: bytes | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=input,
        capture_output=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()}")
    return done.stdout.decode()


def write(repo: Path, path: str, data: bytes | str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


def commit(
    repo: Path, message: str, files: dict[str, bytes | str] | None = None, remove: list[str] = ()
) -> str:
    for path, data in (files or {}).items():
        write(repo, path, data)
        git(repo, "add", "--", path)
    for path in remove:
        git(repo, "rm", "-q", "--", path)
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def count_objects(repo: Path) -> dict[str, int]:
    out = {}
    for line in git(repo, "count-objects", "-v").splitlines():
        key, _, value = line.partition(": ")
        out[key] = int(value)
    return out


def blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def init(path: Path, *args: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", *args)
    return path

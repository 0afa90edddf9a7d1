"""Every blob reachable from any ref, with a path: one streaming pass, optionally incremental.

The pass is ``git rev-list --objects --all --missing=print --filter=object:type=blob`` piped
straight into ``git cat-file --batch-check`` (the two git processes run in parallel; Python only
reads the result). Per blob we keep aggregates (per directory, per extension, a size histogram)
and the K largest blobs with the path they were first seen at (the newest commit that has them).

Walking all trees is the expensive part of any "largest blobs with paths" report. The result is
therefore cached in ``$GIT_COMMON_DIR/orchestra/workspace-history.json`` together with the ref
tips it covers; the next analysis walks only ``new tips --not old tips``. The K largest of a union
are among the K largest of its parts, so the top list stays exact. A full walk happens instead
when history was removed (an old tip is no longer reachable: a deleted unmerged branch, a force
push), when the shallow boundary or K changed, in partial clones (objects arrive lazily), and
when asked (``full``). Aggregates can over-count a blob that is re-added from deep history after
being deleted; the weekly full run resets them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gitio import Git, GitError, decode_path
from .repo import RepoInfo

CACHE_VERSION = 1
CACHE_NAME = "workspace-history.json"
HISTOGRAM_BOUNDS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
HISTOGRAM_LABELS = ("<1 KB", "1-10 KB", "10-100 KB", "100 KB-1 MB", "1-10 MB", "10-100 MB", ">=100 MB")


@dataclass
class History:
    source: str = "none"  # walk | incremental | cache | none (no refs)
    tips: list[str] = field(default_factory=list)
    blobs: int = 0
    blob_bytes: int = 0
    missing: int = 0
    dirs: dict[str, list[int]] = field(default_factory=dict)  # immediate parent dir -> [count, bytes]
    exts: dict[str, list[int]] = field(default_factory=dict)
    histogram: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in HISTOGRAM_LABELS])
    top: dict[str, list[Any]] = field(default_factory=dict)  # oid -> [path, size]
    keep: int = 20
    missing_oids: set[str] = field(default_factory=set)  # only filled in partial clones
    walked_tips: int = 0

    def merge(self, other: History) -> None:
        self.blobs += other.blobs
        self.blob_bytes += other.blob_bytes
        self.missing += other.missing
        for mine, theirs in ((self.dirs, other.dirs), (self.exts, other.exts)):
            for key, (count, size) in theirs.items():
                entry = mine.get(key)
                if entry is None:
                    mine[key] = [count, size]
                else:
                    entry[0] += count
                    entry[1] += size
        for index, (count, size) in enumerate(other.histogram):
            self.histogram[index][0] += count
            self.histogram[index][1] += size
        self.top.update(other.top)
        if len(self.top) > self.keep:
            kept = sorted(self.top.items(), key=lambda item: (-item[1][1], item[0]))[: self.keep]
            self.top = dict(kept)

    def largest(self, count: int) -> list[tuple[str, str, int]]:
        """(oid, path, size), largest first."""
        ordered = sorted(self.top.items(), key=lambda item: (-item[1][1], item[1][0], item[0]))
        return [(oid, path, size) for oid, (path, size) in ordered[:count]]

    def directories(self) -> dict[str, list[int]]:
        """Totals per directory at every level (a directory includes its subdirectories)."""
        totals: dict[str, list[int]] = {}
        for directory, (count, size) in self.dirs.items():
            current = directory
            while current:
                entry = totals.get(current)
                if entry is None:
                    totals[current] = [count, size]
                else:
                    entry[0] += count
                    entry[1] += size
                current = current.rpartition("/")[0]
        return totals

    def to_cache(self) -> dict[str, Any]:
        return {
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "missing": self.missing,
            "dirs": self.dirs,
            "exts": self.exts,
            "histogram": self.histogram,
            "top": self.top,
            "keep": self.keep,
            "tips": self.tips,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> History:
        return cls(
            source="cache",
            tips=list(data["tips"]),
            blobs=int(data["blobs"]),
            blob_bytes=int(data["blob_bytes"]),
            missing=int(data["missing"]),
            dirs={k: [int(v[0]), int(v[1])] for k, v in data["dirs"].items()},
            exts={k: [int(v[0]), int(v[1])] for k, v in data["exts"].items()},
            histogram=[[int(c), int(s)] for c, s in data["histogram"]],
            top={k: [str(v[0]), int(v[1])] for k, v in data["top"].items()},
            keep=int(data["keep"]),
        )


def current_tips(info: RepoInfo) -> list[str]:
    """What `--all` starts from: every ref's object, plus a detached HEAD."""
    tips = {ref.oid for ref in info.refs.values()}
    if info.head_commit and info.head_ref is None:
        tips.add(info.head_commit)
    return sorted(tips)


def walk(git: Git, include: list[str], exclude: list[str], keep: int, want_missing: bool) -> History:
    """One streaming pass over the blobs reachable from ``include`` but not from ``exclude``."""
    result = History(source="walk", keep=keep)
    if not include:
        return result
    with tempfile.TemporaryFile() as rl_err, tempfile.TemporaryFile() as cf_err:
        revlist = subprocess.Popen(
            ["git", "rev-list", "--objects", "--missing=print", "--filter=object:type=blob", "--stdin"],
            cwd=git.repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=rl_err,
            env=git.env,
        )
        catfile = subprocess.Popen(
            [
                "git",
                "cat-file",
                "--buffer",
                "--batch-check=%(objecttype) %(objectsize) %(objectname) %(rest)",
            ],
            cwd=git.repo,
            stdin=revlist.stdout,
            stdout=subprocess.PIPE,
            stderr=cf_err,
            env=git.env,
        )
        assert revlist.stdin is not None and revlist.stdout is not None and catfile.stdout is not None
        revlist.stdout.close()  # cat-file owns the read end now
        spec = "".join(f"{oid}\n" for oid in include) + "".join(f"^{oid}\n" for oid in exclude)
        try:
            revlist.stdin.write(spec.encode())
            revlist.stdin.close()
        except BrokenPipeError:
            pass  # rev-list died early; its exit code and stderr explain why
        _consume(catfile.stdout, result, keep, want_missing)
        catfile.wait()
        revlist.wait()
        if revlist.returncode != 0:
            rl_err.seek(0)
            raise GitError(["rev-list", "--objects", "--stdin"], revlist.returncode, rl_err.read(), git.repo)
        if catfile.returncode != 0:
            cf_err.seek(0)
            raise GitError(["cat-file", "--batch-check"], catfile.returncode, cf_err.read(), git.repo)
    return result


# Histogram bucket by the number of digits of the size (the bounds are powers of ten).
_BUCKET_BY_DIGITS = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6] + [6] * 20


def _consume(stream: Any, result: History, keep: int, want_missing: bool) -> None:
    # The hot loop (one iteration per blob in history): bytes only, locals only, a dict update
    # per aggregate; totals, case folding and decoding happen once at the end.
    dirs: dict[bytes, list[int]] = {}
    exts: dict[bytes, list[int]] = {}
    histogram = [[0, 0] for _ in HISTOGRAM_LABELS]
    by_digits = _BUCKET_BY_DIGITS
    heap: list[tuple[int, bytes, bytes]] = []
    smallest_kept = -1
    missing = 0
    missing_oids: list[bytes] = []
    rest = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:1] != b"b":
                if line[:1] == b"?":  # a missing object (partial clone): "?<oid> missing"
                    missing += 1
                    if want_missing:
                        missing_oids.append(line[1:].split(b" ", 1)[0])
                continue
            _, size_text, oid, path = line.split(b" ", 3)
            size = int(size_text)
            directory, _, base = path.rpartition(b"/")
            entry = dirs.get(directory)
            if entry is None:
                dirs[directory] = [1, size]
            else:
                entry[0] += 1
                entry[1] += size
            dot = base.rfind(b".")
            ext = base[dot:] if dot > 0 else b""
            entry = exts.get(ext)
            if entry is None:
                exts[ext] = [1, size]
            else:
                entry[0] += 1
                entry[1] += size
            entry = histogram[by_digits[len(size_text)]]
            entry[0] += 1
            entry[1] += size
            if size > smallest_kept:
                if len(heap) < keep:
                    heapq.heappush(heap, (size, oid, path))
                else:
                    heapq.heapreplace(heap, (size, oid, path))
                if len(heap) == keep:
                    smallest_kept = heap[0][0]
    result.blobs = sum(count for count, _ in dirs.values())
    result.blob_bytes = sum(size for _, size in dirs.values())
    result.missing = missing
    result.dirs = {decode_path(k): v for k, v in dirs.items()}
    folded: dict[str, list[int]] = {}
    for raw, (count, size) in exts.items():
        entry = folded.setdefault(decode_path(raw).lower(), [0, 0])
        entry[0] += count
        entry[1] += size
    result.exts = folded
    result.histogram = histogram
    result.top = {oid.decode(): [decode_path(path), size] for size, oid, path in heap}
    result.missing_oids = {oid.decode() for oid in missing_oids}


def _fingerprint(info: RepoInfo) -> str:
    """What, besides the tips, decides which objects a walk sees."""
    digest = hashlib.sha256()
    for name in ("shallow",):
        try:
            digest.update((Path(info.git_dir) / name).read_bytes())
        except OSError:
            digest.update(b"-")
    try:
        digest.update((info.objects_dir / "info" / "alternates").read_bytes())
    except OSError:
        digest.update(b"-")
    return digest.hexdigest()[:16]


def cache_path(info: RepoInfo) -> Path:
    return Path(info.common_dir) / "orchestra" / CACHE_NAME


def _load_cache(info: RepoInfo, keep: int) -> History | None:
    try:
        data = json.loads(cache_path(info).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    if data.get("fingerprint") != _fingerprint(info) or int(data.get("keep", 0)) < keep:
        return None
    try:
        return History.from_cache(data)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _save_cache(info: RepoInfo, history: History) -> str | None:
    """Write atomically; a read-only repository simply keeps no cache. Returns an error text."""
    target = cache_path(info)
    data = {"version": CACHE_VERSION, "fingerprint": _fingerprint(info), **history.to_cache()}
    try:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".history-", dir=target.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, target)
    except OSError as exc:
        return f"history cache not written ({exc.strerror or exc})"
    return None


def _history_removed(git: Git, removed: list[str], current: list[str]) -> bool:
    """True when some old tip is no longer reachable from the current tips (or is gone)."""
    spec = "".join(f"{oid}\n" for oid in removed) + "".join(f"^{oid}\n" for oid in current)
    try:
        out = git.run("rev-list", "--count", "--stdin", input=spec.encode())
    except GitError:
        return True  # a pruned object or a non-commit tip: be safe, walk everything
    return int(out.strip() or b"0") > 0


def load_history(
    info: RepoInfo, git: Git, *, keep: int, use_cache: bool, full: bool
) -> tuple[History, list[str]]:
    """The history report for the current refs, and notes on how it was obtained."""
    notes: list[str] = []
    tips = current_tips(info)
    cacheable = use_cache and not info.partial
    cached = _load_cache(info, keep) if cacheable and not full else None
    if cached is not None:
        old = set(cached.tips)
        new = set(tips)
        if old == new:
            cached.source = "cache"
            cached.keep = keep
            return cached, notes
        removed = sorted(old - new)
        if not removed or not _history_removed(git, removed, tips):
            try:
                delta = walk(git, sorted(new - old), sorted(old), keep, want_missing=False)
            except GitError as exc:
                notes.append(f"incremental walk failed, walking everything: {exc}")
            else:
                cached.merge(delta)
                cached.tips = tips
                cached.source = "incremental"
                cached.walked_tips = len(new - old)
                error = _save_cache(info, cached)
                if error:
                    notes.append(error)
                return cached, notes
        else:
            notes.append("history was removed since the last analysis (deleted branch or force push)")
    history = walk(git, tips, [], keep, want_missing=info.partial)
    history.tips = tips
    history.walked_tips = len(tips)
    if cacheable and tips:
        error = _save_cache(info, history)
        if error:
            notes.append(error)
    return history, notes

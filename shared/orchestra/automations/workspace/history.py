"""Every blob reachable from any ref, with a path: one streaming pass, optionally incremental.

The pass is ``git rev-list --objects --missing=print --filter=object:type=blob --stdin`` (the ref
tips) piped straight into ``git cat-file --batch-check`` (the two git processes run in parallel;
Python parses the result chunk by chunk, as columns). Per blob we keep aggregates (per directory,
per extension, a size histogram) and the K largest blobs (ties broken by object id) with the path
they were first seen at: in HEAD, else in the newest commit that has them.

HEAD's tree is walked first, so a blob in HEAD counts at its path there (as ``largest_blobs``
shows it), whatever other branch is newer. That makes HEAD's part of the walk equal to HEAD's
listing, which the checkout report reads anyway (``listing.py``): a full walk takes HEAD's blobs
from it and leaves HEAD's tree out, instead of sizing and parsing HEAD's files a second time.

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
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gitio import Git, GitError, decode_path
from .listing import (
    HISTOGRAM_LABELS,
    HeadListing,
    Once,
    add_counts,
    add_histogram,
    at_least,
    directory_totals,
    extension,
    fold_case,
    indexes_at_least,
    tally,
)
from .repo import RepoInfo
from .reportcache import cache_file, read_cache, write_cache

CACHE_VERSION = 1
CACHE_NAME = "workspace-history.json"


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
    # Listed by the walk but unreadable by cat-file: corrupt or missing objects (never cached).
    unreadable: list[str] = field(default_factory=list)

    def merge(self, other: History) -> None:
        self.blobs += other.blobs
        self.blob_bytes += other.blob_bytes
        self.missing += other.missing
        for mine, theirs in ((self.dirs, other.dirs), (self.exts, other.exts)):
            for key, (count, size) in theirs.items():
                add_counts(mine, key, count, size)
        for index, (count, size) in enumerate(other.histogram):
            self.histogram[index][0] += count
            self.histogram[index][1] += size
        self.top.update(other.top)
        self.unreadable += other.unreadable
        if len(self.top) > self.keep:
            kept = sorted(self.top.items(), key=lambda item: (-item[1][1], item[0]))[: self.keep]
            self.top = dict(kept)

    def largest(self, count: int) -> list[tuple[str, str, int]]:
        """(oid, path, size), largest first."""
        ordered = sorted(self.top.items(), key=lambda item: (-item[1][1], item[1][0], item[0]))
        return [(oid, path, size) for oid, (path, size) in ordered[:count]]

    def directories(self) -> dict[str, list[int]]:
        """Totals per directory at every level (a directory includes its subdirectories)."""
        return directory_totals(self.dirs)[0]

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
    """One streaming pass over the blobs reachable from ``include`` but not from ``exclude``
    (commits, or a tree: everything in it is left out). ``want_missing``: a partial clone, where
    missing objects are expected and counted; elsewhere one is listed in ``unreadable``."""
    if not include:
        return History(source="walk", keep=keep)
    with tempfile.TemporaryFile() as rl_err, tempfile.TemporaryFile() as cf_err:
        # Only blobs matter, but where objects may be missing (partial clones) trees are listed
        # too: the filter would also drop the missing trees of a tree:0 clone from the count.
        only_blobs = [] if want_missing else ["--filter=object:type=blob"]
        revlist = subprocess.Popen(
            ["git", "rev-list", "--objects", "--missing=print", *only_blobs, "--stdin"],
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
        result = _consume(catfile.stdout, keep, want_missing)
        catfile.wait()
        revlist.wait()
        if revlist.returncode != 0:
            rl_err.seek(0)
            raise GitError(["rev-list", "--objects", "--stdin"], revlist.returncode, rl_err.read(), git.repo)
        if catfile.returncode != 0:
            cf_err.seek(0)
            raise GitError(["cat-file", "--batch-check"], catfile.returncode, cf_err.read(), git.repo)
    return result


class _Blobs:
    """Aggregates over blobs given as columns (path, oid, size), keys still raw bytes."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.dirs: dict[bytes, list[int]] = {}
        self.exts: dict[bytes, list[int]] = {}
        self.histogram = [[0, 0] for _ in HISTOGRAM_LABELS]
        self.top: dict[bytes, tuple[int, bytes]] = {}  # oid -> (size, path): the largest, ties by oid

    def add(self, paths: list[bytes], oids: list[bytes], sizes: list[int], *, tallied: bool = False) -> None:
        if not tallied:
            tally(paths, sizes, self.dirs, self.exts)
        add_histogram(self.histogram, sizes)
        floor = at_least(sizes, self.keep)
        if len(self.top) >= self.keep:
            floor = max(floor, min(size for size, _ in self.top.values()))
        for index in indexes_at_least(sizes, floor) if floor >= 0 else range(len(sizes)):
            self.top[oids[index]] = (sizes[index], paths[index])
        if len(self.top) > self.keep:
            kept = sorted(self.top.items(), key=lambda item: (-item[1][0], item[0]))[: self.keep]
            self.top = dict(kept)

    def history(
        self, missing: int = 0, missing_oids: set[str] | None = None, unreadable: list[str] | None = None
    ) -> History:
        return History(
            source="walk",
            keep=self.keep,
            blobs=sum(count for count, _ in self.dirs.values()),
            blob_bytes=sum(size for _, size in self.dirs.values()),
            missing=missing,
            dirs={decode_path(k): [count, size] for k, (count, size) in self.dirs.items()},
            exts=fold_case({decode_path(k): v for k, v in self.exts.items()}),
            histogram=self.histogram,
            top={oid.decode(): [decode_path(path), size] for oid, (size, path) in self.top.items()},
            missing_oids=missing_oids or set(),
            unreadable=unreadable or [],
        )


def _consume(stream: Any, keep: int, want_missing: bool) -> History:
    blobs = _Blobs(keep)
    missing = 0
    missing_oids: list[bytes] = []
    unreadable: list[bytes] = []
    rest = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        paths: list[bytes] = []
        oids: list[bytes] = []
        size_texts: list[bytes] = []
        for line in lines:
            parts = line.split(b" ", 3)
            if parts[0] == b"blob" and len(parts) == 4:
                size_texts.append(parts[1])
                oids.append(parts[2])
                paths.append(parts[3])
            elif line[:1] == b"?":  # a missing object: "?<oid> missing"
                if want_missing:  # a partial clone: promised by its remote, not downloaded
                    missing += 1
                    missing_oids.append(line[1:].split(b" ", 1)[0])
                else:  # anywhere else a reachable object that is gone is damage
                    unreadable.append(line[1:].split(b" ", 1)[0])
            elif line.endswith(b" missing"):  # listed by rev-list, yet cat-file cannot read it
                unreadable.append(line.split(b" ", 1)[0])
        blobs.add(paths, oids, list(map(int, size_texts)))
    return blobs.history(
        missing, {oid.decode() for oid in missing_oids}, [oid.decode(errors="replace") for oid in unreadable]
    )


def head_history(head: HeadListing, keep: int) -> History:
    """The history aggregates of HEAD's blobs, each counted once at its first path in tree order
    (where a walk that starts at HEAD sees it), from the listing the checkout report also uses."""
    paths, oids, sizes = head.paths, head.oids, head.sizes
    blobs = _Blobs(keep)
    totals = head.totals()
    blobs.dirs = {key: [count, size] for key, (count, size) in totals.dirs.items()}
    blobs.exts = {key: [count, size] for key, (count, size) in totals.exts.items()}
    if len(set(oids)) != len(oids):  # the same content at several paths: count it once
        first = dict(zip(reversed(oids), range(len(oids) - 1, -1, -1), strict=True))
        unique = sorted(first.values())
        for index in sorted(set(range(len(oids))).difference(unique)):
            directory, _, base = paths[index].rpartition(b"/")
            add_counts(blobs.dirs, directory, -1, -sizes[index])
            add_counts(blobs.exts, extension(base), -1, -sizes[index])
        paths, oids, sizes = (list(map(column.__getitem__, unique)) for column in (paths, oids, sizes))
    blobs.add(paths, oids, sizes, tallied=True)
    return blobs.history()


def full_walk(
    info: RepoInfo, git: Git, tips: list[str], keep: int, head: Once[HeadListing] | None
) -> History:
    """Every blob reachable from ``tips``, HEAD's tree visited first (each blob in HEAD counts at
    its path there). With ``head`` (HEAD's listing, shared with the checkout report), HEAD's
    blobs come from the listing and the walk leaves HEAD's tree out: the same result, without
    sizing and parsing every file of HEAD a second time."""
    if head is None or info.head_tree is None:
        return walk(git, [*_head_tree(info), *tips], [], keep, want_missing=info.partial)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workspace-head") as pool:
        # Alongside the walk (HEAD's listing is shared with the checkout report: read once).
        at_head = pool.submit(lambda: head_history(head.get(), keep))
        rest = walk(git, tips, [info.head_tree], keep, want_missing=False)
        history = at_head.result()
    history.merge(rest)
    return history


def _head_tree(info: RepoInfo) -> list[str]:
    """HEAD's tree as a walk's first tip: rev-list visits trees given directly before the trees
    of commits, so a blob in HEAD is seen at its path in HEAD, whatever other tips are newer.
    Not in partial clones: there HEAD's tree may be absent (tree:0), and naming it fails the walk."""
    return [info.head_tree] if info.head_tree and not info.partial else []


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
    return cache_file(info, CACHE_NAME)


def _load_cache(info: RepoInfo, keep: int) -> History | None:
    data = read_cache(cache_path(info))
    if data is None or data.get("version") != CACHE_VERSION:
        return None
    try:
        if data.get("fingerprint") != _fingerprint(info) or int(data.get("keep", 0)) < keep:
            return None
        return History.from_cache(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _save_cache(info: RepoInfo, history: History) -> str | None:
    """Returns why the cache was not written, or None."""
    data = {"version": CACHE_VERSION, "fingerprint": _fingerprint(info), **history.to_cache()}
    return write_cache(cache_path(info), data, "history cache")


def _history_removed(git: Git, removed: list[str], current: list[str]) -> bool:
    """True when some old tip is no longer reachable from the current tips (or is gone)."""
    spec = "".join(f"{oid}\n" for oid in removed) + "".join(f"^{oid}\n" for oid in current)
    try:
        out = git.run("rev-list", "--count", "--stdin", input=spec.encode())
    except GitError:
        return True  # a pruned object or a non-commit tip: be safe, walk everything
    return int(out.strip() or b"0") > 0


def load_history(
    info: RepoInfo, git: Git, *, keep: int, use_cache: bool, full: bool, head: Once[HeadListing] | None = None
) -> tuple[History, list[str]]:
    """The history report for the current refs, and notes on how it was obtained. ``head``:
    HEAD's listing, when the caller shares one (a full walk then need not list HEAD's blobs)."""
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
                added = sorted(new - old)
                delta = walk(git, [*_head_tree(info), *added] if added else [], sorted(old), keep, False)
            except GitError as exc:
                notes.append(f"incremental walk failed, walking everything: {exc}")
            else:
                cached.merge(delta)
                cached.tips = tips
                cached.source = "incremental"
                cached.walked_tips = len(added)
                error = None if cached.unreadable else _save_cache(info, cached)
                if error:
                    notes.append(error)
                return cached, notes
        else:
            notes.append("history was removed since the last analysis (deleted branch or force push)")
    history = full_walk(info, git, tips, keep, head) if tips else History(source="walk", keep=keep)
    history.tips = tips
    history.walked_tips = len(tips)
    if cacheable and tips and not history.unreadable:  # a walk that could not read everything is no cache
        error = _save_cache(info, history)
        if error:
            notes.append(error)
    return history, notes

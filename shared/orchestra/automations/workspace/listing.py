"""HEAD's tree as columns, read once per analysis, and per-directory / per-extension totals.

One ``git ls-tree -r -l -z`` serves both the checkout report and the history pass: when the
history walk starts at HEAD, HEAD's blobs come from this listing and the walk skips HEAD's tree
instead of listing and sizing every one of those blobs a second time.

Parsing is columnar: the listing is split into paths and metadata with a few whole-buffer
operations, so the only per-file Python work left is the totals in ``tally``.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Generic, TypeVar

from .gitio import Git, ObjectsUnreadable
from .repo import RepoInfo

HISTOGRAM_BOUNDS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
HISTOGRAM_LABELS = ("<1 KB", "1-10 KB", "10-100 KB", "100 KB-1 MB", "1-10 MB", "10-100 MB", ">=100 MB")

T = TypeVar("T")
K = TypeVar("K")


@dataclass
class Totals:
    dirs: dict[bytes, list[int]]  # immediate parent directory -> [files, bytes]
    exts: dict[bytes, list[int]]  # extension as spelled -> [files, bytes]
    runs: list[tuple[bytes, int, int]]  # (directory, start, end): where its files are listed


@dataclass
class HeadListing:
    """Every blob entry (file or symlink) of HEAD's tree, in tree order, as parallel columns."""

    paths: list[bytes]
    oids: list[bytes]
    sizes: list[int]  # -1: unknown (partial clone, blob not present)
    symlinks: int  # present symlink blobs (a missing one counts as missing)
    submodules: int
    submodule_paths: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.missing = self.sizes.count(-1)
        self._totals = Once(self._tally)

    def has_paths(self, paths: Iterable[bytes]) -> set[bytes]:
        """Those of ``paths`` that name a file or submodule of HEAD (what ``git ls-tree -r
        --name-only HEAD -- PATHS`` prints for literal paths that are not directories). Looks
        only at the runs of the paths' directories in the shared totals."""
        asked = set(paths)
        by_directory: dict[bytes, set[bytes]] = {}
        for path in asked:
            by_directory.setdefault(path.rpartition(b"/")[0], set()).add(path)
        found = asked.intersection(self.submodule_paths)
        for directory, start, end in self.totals().runs:
            names = by_directory.get(directory)
            if names:
                found.update(names.intersection(self.paths[start:end]))
        return found

    def known_sizes(self) -> list[int]:
        """Sizes with the unknown ones counted as 0."""
        return [max(size, 0) for size in self.sizes] if self.missing else self.sizes

    def totals(self) -> Totals:
        """``tally`` of every entry, computed once; shared between threads, so never mutate it."""
        return self._totals.get()

    def _tally(self) -> Totals:
        totals = Totals({}, {}, [])
        tally(self.paths, self.known_sizes(), totals.dirs, totals.exts, totals.runs)
        return totals


def read_listing(git: Git, info: RepoInfo, missing: set[str]) -> HeadListing:
    """``git ls-tree -r`` of HEAD. In a partial clone ``-l`` would download every missing blob,
    so there the sizes of present blobs come from ``git cat-file --batch-check`` instead."""
    assert info.head_tree is not None
    sized = not info.partial
    raw = git.run("ls-tree", "-r", *(["-l"] if sized else []), "-z", "--full-tree", info.head_tree)
    if raw.count(b"\t") == raw.count(b"\0"):
        # No tab inside any path: one split separates metadata and paths of every entry.
        fields = raw.replace(b"\t", b"\0").split(b"\0")
        del fields[-1]
        metas, paths = fields[0::2], fields[1::2]
    else:
        metas, paths = [], []
        for item in raw.split(b"\0")[:-1]:
            meta, _, path = item.partition(b"\t")
            metas.append(meta)
            paths.append(path)
    # An entry starts the output or follows a NUL (paths cannot contain one).
    submodules = raw.startswith(b"160000 commit ") + raw.count(b"\x00160000 commit ")
    submodule_paths: list[bytes] = []
    if submodules:
        blob = [meta[7:12] == b"blob " for meta in metas]
        submodule_paths = [path for path, is_blob in zip(paths, blob, strict=True) if not is_blob]
        metas, paths = list(compress(metas, blob)), list(compress(paths, blob))
    # Blob metadata is "<6-digit mode> blob <oid>[ <size, padded to 7>]": fixed offsets.
    width = len(info.head_tree)
    oids = list(map(itemgetter(slice(12, 12 + width)), metas))
    if sized:
        try:
            sizes = list(map(int, map(itemgetter(slice(13 + width, None)), metas)))
        except ValueError:
            # git prints "BAD" for the size of a blob it cannot read: a corrupt or missing object.
            unreadable = [
                oid.decode()
                for oid, meta in zip(oids, metas, strict=True)
                if not meta[13 + width :].strip().isdigit()
            ]
            raise ObjectsUnreadable("HEAD's listing (git ls-tree -l)", unreadable) from None
        symlinks = raw.startswith(b"120000 blob ") + raw.count(b"\x00120000 blob ")
    else:
        wanted = sorted({oid for oid in oids if oid.decode() not in missing})
        known = sizes_of(git, wanted)
        sizes = [known.get(oid, -1) for oid in oids]
        symlinks = sum(
            1 for meta, size in zip(metas, sizes, strict=True) if meta.startswith(b"120000") and size >= 0
        )
    return HeadListing(
        paths, oids, sizes, symlinks=symlinks, submodules=submodules, submodule_paths=submodule_paths
    )


def sizes_of(git: Git, oids: list[bytes]) -> dict[bytes, int]:
    sizes: dict[bytes, int] = {}
    if oids:
        out = git.run("cat-file", "--batch-check=%(objectname) %(objectsize)", input=b"\n".join(oids) + b"\n")
        for line in out.split(b"\n"):
            parts = line.split(b" ")
            if len(parts) == 2 and parts[1].isdigit():
                sizes[parts[0]] = int(parts[1])
    return sizes


class Once(Generic[T]):
    """A value computed on first use by whichever thread asks first; others wait for it."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._value: T | None = None
        self._done = False

    def get(self) -> T:
        with self._lock:
            if not self._done:
                self._value = self._compute()  # an exception leaves it for the next caller to retry
                self._done = True
            return self._value  # type: ignore[return-value]

    def computed(self) -> T | None:
        """The value when some caller has computed it already, else None (never computes, never
        waits for a computation in progress)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._value if self._done else None
        finally:
            self._lock.release()


def extension(base: bytes) -> bytes:
    """The extension as .gitattributes sees it: from the last dot, not for dotfiles."""
    dot = base.rfind(b".")
    return base[dot:] if dot > 0 else b""


def tally(
    paths: Iterable[bytes],
    sizes: Iterable[int],
    dirs: dict[bytes, list[int]],
    exts: dict[bytes, list[int]],
    runs: list[tuple[bytes, int, int]] | None = None,
) -> None:
    """Add each (path, size) to ``[count, bytes]`` per immediate parent directory and extension;
    ``runs`` receives (directory, start, end) for each stretch of positions in one directory."""
    # The hot loop of every pass (one iteration per file): the listings come grouped by directory,
    # so directory totals are kept per run of equal directories and stored when the run ends.
    current: bytes | None = None
    run_count = run_bytes = done = 0
    for path, size in zip(paths, sizes, strict=True):
        directory, _, base = path.rpartition(b"/")
        if directory != current:
            if current is not None:  # inline: with history's poor grouping this runs per file
                entry = dirs.get(current)
                if entry is None:
                    dirs[current] = [run_count, run_bytes]
                else:
                    entry[0] += run_count
                    entry[1] += run_bytes
                if runs is not None:
                    runs.append((current, done, done + run_count))
                done += run_count
            current, run_count, run_bytes = directory, 0, 0
        run_count += 1
        run_bytes += size
        dot = base.rfind(b".")
        ext = base[dot:] if dot > 0 else b""
        entry = exts.get(ext)
        if entry is None:
            exts[ext] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size
    if current is not None:
        _store_run(dirs, runs, current, run_count, run_bytes, done)


def _store_run(
    dirs: dict[bytes, list[int]],
    runs: list[tuple[bytes, int, int]] | None,
    directory: bytes,
    count: int,
    size: int,
    start: int,
) -> None:
    add_counts(dirs, directory, count, size)
    if runs is not None:
        runs.append((directory, start, start + count))


def add_counts(table: dict[K, list[int]], key: K, count: int, size: int) -> None:
    """``table[key] += [count, size]``; a key whose count drops to 0 is removed."""
    entry = table.get(key)
    if entry is None:
        entry = table[key] = [0, 0]
    entry[0] += count
    entry[1] += size
    if entry[0] <= 0:
        del table[key]


def fold_case(table: dict[str, list[int]]) -> dict[str, list[int]]:
    """The totals with keys lower-cased (extensions: ``.PNG`` and ``.png`` are one)."""
    folded: dict[str, list[int]] = {}
    for key, (count, size) in table.items():
        add_counts(folded, key.lower(), count, size)
    return folded


def directory_totals(dirs: dict[str, list[int]]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """From totals per immediate parent directory: totals per directory at every level (a
    directory includes its subdirectories), and entries (files + subdirectories) per directory."""
    totals: dict[str, list[int]] = {}
    entries: dict[str, int] = {}
    for directory, (files, size) in dirs.items():
        entries[directory] = entries.get(directory, 0) + files
        current = directory
        while current:
            parent = current.rpartition("/")[0]
            if current not in totals:
                entries[parent] = entries.get(parent, 0) + 1  # a new subdirectory of its parent
            add_counts(totals, current, files, size)
            current = parent
    return totals, entries


def add_histogram(histogram: list[list[int]], sizes: list[int]) -> None:
    """Add ``sizes`` to ``[count, bytes]`` per HISTOGRAM_BOUNDS bucket (lower bound inclusive)."""
    ordered = sorted(sizes)
    start = 0
    for index, bound in enumerate((*HISTOGRAM_BOUNDS, None)):
        end = len(ordered) if bound is None else bisect_left(ordered, bound, start)
        histogram[index][0] += end - start
        histogram[index][1] += sum(ordered[start:end])
        start = end


def at_least(sizes: list[int], count: int) -> int:
    """The ``count``-th largest of ``sizes`` (-1 when there are fewer): the admission floor."""
    if count <= 0 or len(sizes) < count:
        return -1
    return heapq.nlargest(count, sizes)[-1]


def indexes_at_least(sizes: list[int], floor: int) -> list[int]:
    """Positions of the sizes >= ``floor``, in order."""
    return list(compress(range(len(sizes)), map(floor.__le__, sizes)))

"""What a checkout of HEAD contains (git-sizer's concerns): files, sizes, depth, wide directories,
large binaries that belong in Git LFS, and build outputs or caches that were committed.

A full pass reads HEAD's listing (``listing.py``: one ``git ls-tree -r -l -z``, shared with the
history pass).

The pass produces a small state (per-directory and per-extension totals, the largest and deepest
files with some spare candidates, big files, committed-junk counts) cached beside the history
cache. When HEAD moves, ``git diff-tree`` between the cached tree and the new one updates that
state, so a merge costs work in proportion to what it changed, not to the size of the checkout.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import compress, repeat
from typing import Any

from .gitio import Git, GitError, decode_path, display_path
from .listing import (
    HeadListing,
    Once,
    add_counts,
    at_least,
    directory_totals,
    extension,
    fold_case,
    indexes_at_least,
    read_listing,
    sizes_of,
)
from .repo import RepoInfo
from .reportcache import cache_file, read_cache, write_cache
from .settings import WorkspaceSettings

CACHE_VERSION = 2
SPARE = 4  # candidates kept per reported entry, so deletions rarely force a full pass
CACHE_NAME = "workspace-head.json"
SNIFF_BYTES = 8000  # what git itself looks at to decide "binary"


@dataclass
class JunkMatch:
    pattern: str
    files: int = 0
    size_bytes: int = 0
    examples: list[str] = field(default_factory=list)  # directories for "name/" patterns, else files


@dataclass
class HeadState:
    """What the report is derived from; updatable by a diff between two trees."""

    tree: str
    dirs: dict[str, list[int]] = field(default_factory=dict)  # immediate parent -> [files, bytes]
    exts: dict[str, list[int]] = field(default_factory=dict)  # extension as spelled -> [files, bytes]
    submodules: int = 0
    symlinks: int = 0
    missing_blobs: int = 0
    # The largest / deepest files (and spares): every file not listed is at most *_floor big /
    # deep; -1 means every file is listed.
    largest: list[list[Any]] = field(default_factory=list)  # [size, path, oid]
    largest_floor: int = -1
    deepest: list[list[Any]] = field(default_factory=list)  # [depth, path]
    deepest_floor: int = -1
    big: dict[str, list[Any]] = field(default_factory=dict)  # path -> [oid, size], size >= lfs_min
    junk: dict[str, list[Any]] = field(default_factory=dict)  # file pattern -> [files, bytes, examples]


@dataclass
class Checkout:
    tree: str | None = None
    files: int = 0
    size_bytes: int = 0
    submodules: int = 0
    symlinks: int = 0
    missing_blobs: int = 0  # partial clone: size unknown
    max_depth: int = 0
    largest_files: list[dict[str, Any]] = field(default_factory=list)  # {path, size, oid}
    deepest_paths: list[dict[str, Any]] = field(default_factory=list)  # {path, depth}
    biggest_directories: list[dict[str, Any]] = field(default_factory=list)  # {path, files, size}
    widest_directories: list[dict[str, Any]] = field(default_factory=list)  # {path, entries}
    extensions: list[dict[str, Any]] = field(default_factory=list)  # {extension, files, size}
    lfs_candidates: list[dict[str, Any]] = field(default_factory=list)  # {path, size, oid, reason}
    committed_junk: list[dict[str, Any]] = field(default_factory=list)
    # The K largest blobs of HEAD with their oids: enough to tell whether any of the K largest
    # blobs of history is still in HEAD.
    top_oids: dict[str, list[Any]] = field(default_factory=dict)  # oid -> [path, size]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("top_oids")
        return data


class _JunkMatcher:
    """Compiled committed-junk patterns: directory names, extensions, file names, other globs."""

    def __init__(self, patterns: list[str]) -> None:
        self.dir_literals: dict[str, str] = {}
        self.dir_globs: list[tuple[re.Pattern[str], str]] = []
        self.exts: dict[bytes, str] = {}
        self.names: dict[bytes, str] = {}
        self.globs: list[tuple[re.Pattern[str], str]] = []
        for pattern in patterns:
            if pattern.endswith("/"):
                name = pattern.rstrip("/")
                if _is_glob(name):
                    self.dir_globs.append((re.compile(fnmatch.translate(name)), pattern))
                else:
                    self.dir_literals[name] = pattern
            elif pattern.startswith("*.") and not _is_glob(pattern[2:]):
                self.exts[pattern[1:].encode()] = pattern  # case-sensitive, as .gitignore
            elif not _is_glob(pattern) and "/" not in pattern:
                self.names[pattern.encode()] = pattern
            else:
                self.globs.append((re.compile(fnmatch.translate(pattern)), pattern))

    def directory(self, name: str) -> str | None:
        found = self.dir_literals.get(name)
        if found is None:
            for regex, pattern in self.dir_globs:
                if regex.match(name):
                    return pattern
        return found

    def glob(self, path: str) -> str | None:
        base = path.rpartition("/")[2]
        for regex, pattern in self.globs:
            if regex.match(path if "/" in pattern else base):
                return pattern
        return None


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _fingerprint(settings: WorkspaceSettings) -> str:
    relevant = {
        "largest_count": settings.largest_count,
        "lfs_min_bytes": settings.lfs_min_bytes,
        "binary_extensions": settings.binary_extensions,
        "committed_junk_patterns": settings.committed_junk_patterns,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _sniff_binary(info: RepoInfo, path: str) -> bool | None:
    """Binary by git's rule (a NUL in the first 8000 bytes), read from the work tree if there."""
    if info.toplevel is None:
        return None
    try:
        with open(os.path.join(info.toplevel, path), "rb") as handle:
            return b"\0" in handle.read(SNIFF_BYTES)
    except OSError:
        return None


def analyze_checkout(
    git: Git,
    info: RepoInfo,
    settings: WorkspaceSettings,
    *,
    missing: set[str],
    use_cache: bool,
    listing: Once[HeadListing] | None = None,
) -> tuple[Checkout, list[str]]:
    """The HEAD report: from the cache, by a tree diff from the cached state, or by a full pass
    over ``listing`` (HEAD's listing shared with the history pass; read here when None)."""
    notes: list[str] = []
    if info.head_tree is None:
        return Checkout(), notes
    path = cache_file(info, CACHE_NAME)
    fingerprint = _fingerprint(settings)
    cacheable = use_cache and not info.partial
    state = None
    data = read_cache(path) if cacheable else None
    if (
        data is not None
        and data.get("version") == CACHE_VERSION
        and data.get("fingerprint") == fingerprint
        and (info.toplevel is not None) == data.get("worktree")
    ):
        try:
            if data.get("tree") == info.head_tree:
                return Checkout(**data["checkout"]), notes
            cached = HeadState(**data["state"])
            if _update(cached, git, info, settings):
                state = cached
        except (TypeError, KeyError, ValueError, AttributeError, IndexError):
            state = None  # written by another version: start over
    if state is None:
        state = _full_state(git, info, settings, missing, listing)
    checkout = _report(state, info, settings)
    if cacheable:
        payload = {
            "version": CACHE_VERSION,
            "tree": info.head_tree,
            "fingerprint": fingerprint,
            "worktree": info.toplevel is not None,
            "state": vars(state),  # plain containers already: no deep copy needed to serialise
            "checkout": asdict(checkout),
        }
        error = write_cache(path, payload, "checkout cache")
        if error:
            notes.append(error)
    return checkout, notes


def _junk_roots_match(matcher: _JunkMatcher, directory: str) -> bool:
    """True when some directory on the path matches a directory pattern ("node_modules/")."""
    if not directory or not (matcher.dir_literals or matcher.dir_globs):
        return False
    return any(matcher.directory(part) for part in directory.split("/"))


def _file_pattern(matcher: _JunkMatcher, path: bytes) -> str | None:
    base = path.rpartition(b"/")[2]
    hit = matcher.exts.get(extension(base)) or matcher.names.get(base)
    if hit is None and matcher.globs:
        hit = matcher.glob(decode_path(path))
    return hit


def _full_state(
    git: Git,
    info: RepoInfo,
    settings: WorkspaceSettings,
    missing: set[str],
    listing: Once[HeadListing] | None,
) -> HeadState:
    assert info.head_tree is not None
    spare = settings.largest_count * SPARE
    state = HeadState(tree=info.head_tree)
    try:
        head = listing.get() if listing is not None else read_listing(git, info, missing)
    except GitError:
        if not info.partial:
            raise
        head = HeadListing([], [], [], symlinks=0, submodules=0)
    paths, oids = head.paths, head.oids
    sizes = head.known_sizes()
    state.submodules, state.symlinks, state.missing_blobs = head.submodules, head.symlinks, head.missing
    totals = head.totals()
    dirs = totals.dirs
    state.dirs = {decode_path(k): [count, size] for k, (count, size) in dirs.items()}
    state.exts = {decode_path(k): [count, size] for k, (count, size) in totals.exts.items()}
    complete = len(paths) <= spare
    floor = at_least(sizes, spare)
    chosen = indexes_at_least(sizes, floor) if floor >= 0 else range(len(paths))
    largest = sorted(((sizes[i], paths[i], oids[i]) for i in chosen), key=lambda e: (-e[0], e[1]))[:spare]
    state.largest = [[size, decode_path(path), oid.decode()] for size, path, oid in largest]
    state.largest_floor = -1 if complete else floor
    # Deepest: only files in the deepest directories need looking at.
    deep_dirs: set[bytes] = set()
    covered = 0
    for directory in sorted(dirs, key=lambda d: -(d.count(b"/") + 1 if d else 0)):
        deep_dirs.add(directory)
        covered += dirs[directory][0]
        if covered >= spare:
            break
    deepest = sorted(
        (
            (directory.count(b"/") + 2 if directory else 1, path)
            for directory, start, end in totals.runs
            if directory in deep_dirs
            for path in paths[start:end]
        ),
        key=lambda e: (-e[0], e[1]),
    )[:spare]
    state.deepest = [[depth, decode_path(path)] for depth, path in deepest]
    state.deepest_floor = -1 if complete else (deepest[-1][0] if deepest else -1)
    state.big = {
        decode_path(paths[i]): [oids[i].decode(), sizes[i]]
        for i in indexes_at_least(sizes, settings.lfs_min_bytes)
    }
    matcher = _JunkMatcher(settings.committed_junk_patterns)
    for index in _junk_candidates(matcher, paths):
        path = paths[index]
        pattern = _file_pattern(matcher, path)
        if pattern is None:
            continue
        text = decode_path(path)
        if _junk_roots_match(matcher, text.rpartition("/")[0]):
            continue  # reported with its directory ("node_modules/"), not again by name
        entry = state.junk.setdefault(pattern, [0, 0, []])
        entry[0] += 1
        entry[1] += sizes[index]
        if len(entry[2]) < 5:
            entry[2].append(text)
    return state


def _junk_candidates(matcher: _JunkMatcher, paths: list[bytes]) -> Iterable[int]:
    """Positions of the files that may match a file pattern, in order (a superset: the caller
    checks each with ``_file_pattern``). Suffix tests run in C, so a clean tree costs little."""
    if matcher.globs:
        return range(len(paths))
    suffixes = (*matcher.exts, *(b"/" + name for name in matcher.names))
    if not suffixes:
        return ()
    ends = compress(range(len(paths)), map(bytes.endswith, paths, repeat(suffixes)))
    named = compress(range(len(paths)), map(matcher.names.__contains__, paths))  # files at the root
    return sorted({*ends, *named})


def _update(state: HeadState, git: Git, info: RepoInfo, settings: WorkspaceSettings) -> bool:
    """Move ``state`` to HEAD's tree with a tree diff; False when a full pass is needed instead."""
    assert info.head_tree is not None
    try:
        raw = git.run("diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", state.tree, info.head_tree)
    except GitError:
        return False  # the old tree is gone (pruned): start over
    parts = raw.split(b"\0")
    changes: list[tuple[bytes, bytes, bytes, bytes, bytes]] = []
    for index in range(0, len(parts) - 1, 2):
        meta = parts[index]
        if meta.startswith(b":"):
            old_mode, new_mode, old_oid, new_oid, _status = meta[1:].split(b" ")
            changes.append((old_mode, new_mode, old_oid, new_oid, parts[index + 1]))
    files = sum(count for count, _ in state.dirs.values())
    if len(changes) > max(files // 3, 1000):
        return False  # most of the tree changed: the full pass is cheaper
    zero = b"0" * len(changes[0][2]) if changes else b""
    wanted = {o for c in changes for o, m in ((c[2], c[0]), (c[3], c[1])) if o != zero and m != b"160000"}
    sizes = sizes_of(git, sorted(wanted))
    matcher = _JunkMatcher(settings.committed_junk_patterns)
    lfs_min = settings.lfs_min_bytes
    for old_mode, new_mode, old_oid, new_oid, raw_path in changes:
        path = decode_path(raw_path)
        if old_oid != zero:
            _apply(state, matcher, path, raw_path, old_mode, old_oid, sizes.get(old_oid, 0), -1, lfs_min)
        if new_oid != zero:
            _apply(state, matcher, path, raw_path, new_mode, new_oid, sizes.get(new_oid, 0), 1, lfs_min)
    state.tree = info.head_tree
    keep = settings.largest_count
    spare = keep * SPARE
    for attr, floor_attr in (("largest", "largest_floor"), ("deepest", "deepest_floor")):
        entries = getattr(state, attr)
        if getattr(state, floor_attr) != -1 and len(entries) < keep:
            return False  # deletions used up the spares: the next largest file is unknown
        if len(entries) > 2 * spare:
            entries.sort(key=lambda e: (-e[0], e[1]))
            dropped = entries[spare:]
            del entries[spare:]
            setattr(state, floor_attr, max(getattr(state, floor_attr), max(e[0] for e in dropped)))
    return True


def _apply(
    state: HeadState,
    matcher: _JunkMatcher,
    path: str,
    raw_path: bytes,
    mode: bytes,
    oid: bytes,
    size: int,
    sign: int,
    lfs_min: int,
) -> None:
    """Add (sign 1) or remove (sign -1) one tree entry."""
    if mode == b"160000":
        state.submodules += sign
        return
    directory = path.rpartition("/")[0]
    add_counts(state.dirs, directory, sign, sign * size)
    add_counts(state.exts, decode_path(extension(raw_path.rpartition(b"/")[2])), sign, sign * size)
    if mode == b"120000":
        state.symlinks += sign
    depth = path.count("/") + 1
    if sign < 0:
        state.largest = [e for e in state.largest if e[1] != path]
        state.deepest = [e for e in state.deepest if e[1] != path]
        state.big.pop(path, None)
    else:
        if size > state.largest_floor:
            state.largest.append([size, path, oid.decode()])
        if depth > state.deepest_floor:
            state.deepest.append([depth, path])
        if size >= lfs_min:
            state.big[path] = [oid.decode(), size]
    pattern = _file_pattern(matcher, raw_path)
    if pattern and not _junk_roots_match(matcher, directory):
        entry = state.junk.setdefault(pattern, [0, 0, []])
        entry[0] += sign
        entry[1] += sign * size
        if sign < 0 and path in entry[2]:
            entry[2].remove(path)
        elif sign > 0 and len(entry[2]) < 5:
            entry[2].append(path)
        if entry[0] <= 0:
            del state.junk[pattern]


def _report(state: HeadState, info: RepoInfo, settings: WorkspaceSettings) -> Checkout:
    keep = settings.largest_count
    result = Checkout(
        tree=state.tree,
        files=sum(count for count, _ in state.dirs.values()),
        size_bytes=sum(size for _, size in state.dirs.values()),
        submodules=state.submodules,
        symlinks=state.symlinks,
        missing_blobs=state.missing_blobs,
    )
    largest = sorted(state.largest, key=lambda e: (-e[0], e[1]))[:keep]
    result.largest_files = [{"path": display_path(p), "size": s, "oid": o} for s, p, o in largest]
    result.top_oids = {o: [p, s] for s, p, o in largest}
    deepest = sorted(state.deepest, key=lambda e: (-e[0], e[1]))[:keep]
    result.deepest_paths = [{"path": display_path(p), "depth": d} for d, p in deepest]
    result.max_depth = deepest[0][0] if deepest else 0
    totals, widths = directory_totals(state.dirs)
    result.biggest_directories = [
        {"path": display_path(path), "files": files, "size": size}
        for path, (files, size) in sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))[:keep]
    ]
    result.widest_directories = [
        {"path": display_path(path) or ".", "entries": count}
        for path, count in sorted(widths.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
    ]
    exts = fold_case(state.exts)
    result.extensions = [
        {"extension": display_path(ext) or "(none)", "files": files, "size": size}
        for ext, (files, size) in sorted(exts.items(), key=lambda kv: (-kv[1][1], kv[0]))[:keep]
    ]
    binary_exts = set(settings.binary_extensions)
    for path, (oid, size) in sorted(state.big.items(), key=lambda kv: (-kv[1][1], kv[0])):
        ext = os.path.splitext(path)[1].lower()
        if ext in binary_exts:
            reason = f"binary type {ext}"
        elif _sniff_binary(info, path):
            reason = "binary content"
        else:
            continue
        result.lfs_candidates.append({"path": display_path(path), "size": size, "oid": oid, "reason": reason})
    matcher = _JunkMatcher(settings.committed_junk_patterns)
    junk: list[JunkMatch] = []
    # Directory patterns ("node_modules/"): the outermost matching directories.
    by_pattern: dict[str, JunkMatch] = {}
    if matcher.dir_literals or matcher.dir_globs:
        for path in sorted(totals):
            parts = path.split("/")
            for depth, name in enumerate(parts):
                hit = matcher.directory(name)
                if hit:
                    if depth == len(parts) - 1:
                        match = by_pattern.setdefault(hit, JunkMatch(hit))
                        match.files += totals[path][0]
                        match.size_bytes += totals[path][1]
                        if len(match.examples) < 5:
                            match.examples.append(display_path(path) + "/")
                    break
    junk.extend(by_pattern.values())
    for pattern, (files, size, examples) in state.junk.items():
        junk.append(JunkMatch(pattern, files, size, [display_path(e) for e in sorted(examples)]))
    result.committed_junk = [
        {"pattern": m.pattern, "files": m.files, "size_bytes": m.size_bytes, "examples": m.examples}
        for m in sorted(junk, key=lambda m: (-m.size_bytes, m.pattern))
    ]
    return result

"""What a checkout of HEAD contains (git-sizer's concerns): files, sizes, depth, wide directories,
large binaries that belong in Git LFS, and build outputs or caches that were committed.

One ``git ls-tree -r -l -z HEAD`` pass (sizes included). In a partial clone ``-l`` would fetch
every missing blob, so there the listing has no sizes and the sizes of present blobs come from
``git cat-file --batch-check`` on exactly those.

The pass produces a small state (per-directory and per-extension totals, the largest and deepest
files with some spare candidates, big files, committed-junk counts) cached beside the history
cache. When HEAD moves, ``git diff-tree`` between the cached tree and the new one updates that
state, so a merge costs work in proportion to what it changed, not to the size of the checkout.
"""

from __future__ import annotations

import fnmatch
import hashlib
import heapq
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .gitio import Git, GitError, decode_path, display_path
from .repo import RepoInfo
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


def _listing(git: Git, info: RepoInfo, missing: set[str]) -> Iterator[tuple[bytes, bytes, bytes, int, bytes]]:
    """(mode, type, oid, size (-1 unknown), path) for every entry of HEAD, recursively."""
    assert info.head_tree is not None
    if not info.partial:
        raw = git.run("ls-tree", "-r", "-l", "-z", "--full-tree", info.head_tree)
        for item in raw.split(b"\0"):
            if item:
                head, _, path = item.partition(b"\t")
                mode, typ, oid, size = head.split()
                yield mode, typ, oid, int(size) if size != b"-" else -1, path
        return
    raw = git.run("ls-tree", "-r", "-z", "--full-tree", info.head_tree)
    entries = []
    for item in raw.split(b"\0"):
        if item:
            head, _, path = item.partition(b"\t")
            mode, typ, oid = head.split()
            entries.append((mode, typ, oid, path))
    present = sorted({e[2] for e in entries if e[1] == b"blob" and e[2].decode() not in missing})
    sizes = _sizes(git, present)
    for mode, typ, oid, path in entries:
        yield mode, typ, oid, sizes.get(oid, -1), path


def _sizes(git: Git, oids: list[bytes]) -> dict[bytes, int]:
    sizes: dict[bytes, int] = {}
    if oids:
        out = git.run("cat-file", "--batch-check=%(objectname) %(objectsize)", input=b"\n".join(oids) + b"\n")
        for line in out.split(b"\n"):
            parts = line.split(b" ")
            if len(parts) == 2 and parts[1].isdigit():
                sizes[parts[0]] = int(parts[1])
    return sizes


def analyze_checkout(
    git: Git, info: RepoInfo, settings: WorkspaceSettings, *, missing: set[str], use_cache: bool
) -> tuple[Checkout, list[str]]:
    notes: list[str] = []
    if info.head_tree is None:
        return Checkout(), notes
    cache_file = Path(info.common_dir) / "orchestra" / CACHE_NAME
    fingerprint = _fingerprint(settings)
    cacheable = use_cache and not info.partial
    state = None
    if cacheable:
        try:
            data = json.loads(cache_file.read_text())
            if (
                data.get("version") == CACHE_VERSION
                and data.get("fingerprint") == fingerprint
                and (info.toplevel is not None) == data.get("worktree")
            ):
                if data.get("tree") == info.head_tree:
                    return Checkout(**data["checkout"]), notes
                cached = HeadState(**data["state"])
                if _update(cached, git, info, settings):
                    state = cached
        except (OSError, ValueError, TypeError, KeyError):
            state = None
    if state is None:
        state = _full_state(git, info, settings, missing)
    checkout = _report(state, info, settings)
    if cacheable:
        payload = {
            "version": CACHE_VERSION,
            "tree": info.head_tree,
            "fingerprint": fingerprint,
            "worktree": info.toplevel is not None,
            "state": asdict(state),
            "checkout": asdict(checkout),
        }
        try:
            cache_file.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".head-", dir=cache_file.parent)
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, separators=(",", ":"))
            os.replace(tmp, cache_file)
        except OSError as exc:
            notes.append(f"checkout cache not written ({exc.strerror or exc})")
    return checkout, notes


def _junk_roots_match(matcher: _JunkMatcher, directory: str) -> bool:
    """True when some directory on the path matches a directory pattern ("node_modules/")."""
    if not directory or not (matcher.dir_literals or matcher.dir_globs):
        return False
    return any(matcher.directory(part) for part in directory.split("/"))


def _file_pattern(matcher: _JunkMatcher, path: bytes) -> str | None:
    base = path.rpartition(b"/")[2]
    dot = base.rfind(b".")
    hit = matcher.exts.get(base[dot:] if dot > 0 else b"") or matcher.names.get(base)
    if hit is None and matcher.globs:
        hit = matcher.glob(decode_path(path))
    return hit


def _full_state(git: Git, info: RepoInfo, settings: WorkspaceSettings, missing: set[str]) -> HeadState:
    assert info.head_tree is not None
    spare = settings.largest_count * SPARE
    state = HeadState(tree=info.head_tree)
    dirs: dict[bytes, list[int]] = {}
    raw_exts: dict[bytes, list[int]] = {}
    largest: list[tuple[int, bytes, bytes]] = []
    smallest_kept = -1
    big: list[tuple[bytes, bytes, int]] = []
    junk_hits: list[tuple[str, bytes, int]] = []
    matcher = _JunkMatcher(settings.committed_junk_patterns)
    check_files = bool(matcher.exts or matcher.names or matcher.globs)
    junk_exts, junk_names = matcher.exts, matcher.names
    lfs_min = settings.lfs_min_bytes
    paths: list[bytes] = []
    try:
        listing = list(_listing(git, info, missing))
    except GitError:
        if not info.partial:
            raise
        listing = []
    # The hot loop (one iteration per file in HEAD): dict updates and a heap check only.
    for mode, typ, oid, size, path in listing:
        if typ != b"blob":
            if typ == b"commit":
                state.submodules += 1
            continue
        paths.append(path)
        if size < 0:
            state.missing_blobs += 1
            size = 0
        elif mode == b"120000":
            state.symlinks += 1
        directory, _, base = path.rpartition(b"/")
        entry = dirs.get(directory)
        if entry is None:
            dirs[directory] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size
        dot = base.rfind(b".")
        ext = base[dot:] if dot > 0 else b""
        entry = raw_exts.get(ext)
        if entry is None:
            raw_exts[ext] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size
        if size > smallest_kept:
            if len(largest) < spare:
                heapq.heappush(largest, (size, path, oid))
            else:
                heapq.heapreplace(largest, (size, path, oid))
            if len(largest) == spare:
                smallest_kept = largest[0][0]
        if size >= lfs_min:
            big.append((path, oid, size))
        if check_files:
            hit = junk_exts.get(ext) or junk_names.get(base)
            if hit is None and matcher.globs:
                hit = matcher.glob(decode_path(path))
            if hit:
                junk_hits.append((hit, path, size))
    state.dirs = {decode_path(k): v for k, v in dirs.items()}
    state.exts = {decode_path(k): v for k, v in raw_exts.items()}
    complete = len(paths) <= spare
    state.largest = [[size, decode_path(path), oid.decode()] for size, path, oid in largest]
    state.largest_floor = -1 if complete else smallest_kept
    # Deepest: only files in the deepest directories need looking at.
    deep_dirs: set[bytes] = set()
    covered = 0
    for directory in sorted(dirs, key=lambda d: -(d.count(b"/") + 1 if d else 0)):
        deep_dirs.add(directory)
        covered += dirs[directory][0]
        if covered >= spare:
            break
    deepest = sorted(
        ((p.count(b"/") + 1, p) for p in paths if p.rpartition(b"/")[0] in deep_dirs),
        key=lambda e: (-e[0], e[1]),
    )[:spare]
    state.deepest = [[depth, decode_path(path)] for depth, path in deepest]
    state.deepest_floor = -1 if complete else (deepest[-1][0] if deepest else -1)
    state.big = {decode_path(path): [oid.decode(), size] for path, oid, size in big}
    for pattern, path, size in junk_hits:
        text = decode_path(path)
        if _junk_roots_match(matcher, text.rpartition("/")[0]):
            continue  # reported with its directory ("node_modules/"), not again by name
        entry = state.junk.setdefault(pattern, [0, 0, []])
        entry[0] += 1
        entry[1] += size
        if len(entry[2]) < 5:
            entry[2].append(text)
    return state


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
    sizes = _sizes(git, sorted(wanted))
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
    directory, _, base = path.rpartition("/")
    for table, key in (
        (state.dirs, directory),
        (state.exts, base[base.rfind(".") :] if base.rfind(".") > 0 else ""),
    ):
        entry = table.setdefault(key, [0, 0])
        entry[0] += sign
        entry[1] += sign * size
        if entry[0] <= 0:
            del table[key]
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
    totals, widths = _directory_totals(state.dirs)
    result.biggest_directories = [
        {"path": display_path(path), "files": files, "size": size}
        for path, (files, size) in sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))[:keep]
    ]
    result.widest_directories = [
        {"path": display_path(path) or ".", "entries": count}
        for path, count in sorted(widths.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
    ]
    exts: dict[str, list[int]] = {}
    for ext, (files, size) in state.exts.items():
        entry = exts.setdefault(ext.lower(), [0, 0])
        entry[0] += files
        entry[1] += size
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


def _directory_totals(dirs: dict[str, list[int]]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Totals per directory at every level, and entries (files + subdirectories) per directory."""
    totals: dict[str, list[int]] = {}
    entries: dict[str, int] = {}
    for directory, (files, size) in dirs.items():
        entries[directory] = entries.get(directory, 0) + files
        current = directory
        while current:
            entry = totals.get(current)
            if entry is None:
                totals[current] = [files, size]
                parent = current.rpartition("/")[0]
                entries[parent] = entries.get(parent, 0) + 1  # a new subdirectory of its parent
            else:
                entry[0] += files
                entry[1] += size
            current = current.rpartition("/")[0]
    return totals, entries

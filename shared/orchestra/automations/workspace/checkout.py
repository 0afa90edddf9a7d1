"""What a checkout of HEAD contains (git-sizer's concerns): files, sizes, depth, wide directories,
large binaries that belong in Git LFS, and build outputs or caches that were committed.

One ``git ls-tree -r -l -z HEAD`` pass (sizes included). In a partial clone ``-l`` would fetch
every missing blob, so there the listing has no sizes and the sizes of present blobs come from
``git cat-file --batch-check`` on exactly those. The result depends only on the HEAD tree and the
settings, so it is cached beside the history cache under the tree id.
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

from .gitio import Git, GitError, decode_path
from .repo import RepoInfo
from .settings import WorkspaceSettings

CACHE_VERSION = 1
CACHE_NAME = "workspace-head.json"
SNIFF_BYTES = 8000  # what git itself looks at to decide "binary"


@dataclass
class JunkMatch:
    pattern: str
    files: int = 0
    size_bytes: int = 0
    examples: list[str] = field(default_factory=list)  # directories for "name/" patterns, else files
    roots: list[str] = field(default_factory=list, repr=False)


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
    sizes: dict[bytes, int] = {}
    if present:
        out = git.run(
            "cat-file", "--batch-check=%(objectname) %(objectsize)", input=b"\n".join(present) + b"\n"
        )
        for line in out.split(b"\n"):
            parts = line.split(b" ")
            if len(parts) == 2 and parts[1].isdigit():
                sizes[parts[0]] = int(parts[1])
    for mode, typ, oid, path in entries:
        yield mode, typ, oid, sizes.get(oid, -1), path


def analyze_checkout(
    git: Git, info: RepoInfo, settings: WorkspaceSettings, *, missing: set[str], use_cache: bool
) -> tuple[Checkout, list[str]]:
    notes: list[str] = []
    if info.head_tree is None:
        return Checkout(), notes
    cache_file = Path(info.common_dir) / "orchestra" / CACHE_NAME
    fingerprint = _fingerprint(settings)
    cacheable = use_cache and not info.partial
    if cacheable:
        try:
            data = json.loads(cache_file.read_text())
            if (
                data.get("version") == CACHE_VERSION
                and data.get("tree") == info.head_tree
                and data.get("fingerprint") == fingerprint
                and (info.toplevel is not None) == data.get("worktree")
            ):
                return Checkout(**data["checkout"]), notes
        except (OSError, ValueError, TypeError, KeyError):
            pass
    checkout = _compute(git, info, settings, missing)
    if cacheable:
        payload = {
            "version": CACHE_VERSION,
            "tree": info.head_tree,
            "fingerprint": fingerprint,
            "worktree": info.toplevel is not None,
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


def _compute(git: Git, info: RepoInfo, settings: WorkspaceSettings, missing: set[str]) -> Checkout:
    keep = settings.largest_count
    result = Checkout(tree=info.head_tree)
    dirs: dict[bytes, list[int]] = {}  # immediate parent -> [files, bytes]
    raw_exts: dict[bytes, list[int]] = {}
    largest: list[tuple[int, bytes, bytes]] = []
    smallest_kept = -1
    big_candidates: list[tuple[bytes, bytes, int]] = []
    junk_hits: list[tuple[str, bytes, int]] = []  # (pattern, path, size) of file-pattern matches
    matcher = _JunkMatcher(settings.committed_junk_patterns)
    check_files = bool(matcher.exts or matcher.names or matcher.globs)
    junk_exts, junk_names = matcher.exts, matcher.names
    lfs_min = settings.lfs_min_bytes
    entries: list[bytes] = []  # blob paths, for the deepest-path pass
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
                result.submodules += 1
            continue
        entries.append(path)
        if size < 0:
            result.missing_blobs += 1
            size = 0
        elif mode == b"120000":
            result.symlinks += 1
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
            if len(largest) < keep:
                heapq.heappush(largest, (size, oid, path))
            else:
                heapq.heapreplace(largest, (size, oid, path))
            if len(largest) == keep:
                smallest_kept = largest[0][0]
        if size >= lfs_min:
            big_candidates.append((path, oid, size))
        if check_files:
            hit = junk_exts.get(ext) or junk_names.get(base)
            if hit is None and matcher.globs:
                hit = matcher.glob(decode_path(path))
            if hit:
                junk_hits.append((hit, path, size))
    result.files = len(entries)
    result.size_bytes = sum(size for _, size in dirs.values())
    exts: dict[str, list[int]] = {}
    for raw_ext, (files, size) in raw_exts.items():
        entry = exts.setdefault(raw_ext.decode(errors="replace").lower(), [0, 0])
        entry[0] += files
        entry[1] += size
    # Deepest paths: only files in the deepest directories need looking at.
    deep_dirs: set[bytes] = set()
    covered = 0
    for directory in sorted(dirs, key=lambda d: -(d.count(b"/") + 1 if d else 0)):
        deep_dirs.add(directory)
        covered += dirs[directory][0]
        if covered >= keep:
            break
    deepest = heapq.nlargest(
        keep, ((p.count(b"/") + 1, p) for p in entries if p.rpartition(b"/")[0] in deep_dirs)
    )
    result.max_depth = deepest[0][0] if deepest else 0
    result.largest_files = [
        {"path": decode_path(p), "size": s, "oid": o.decode()} for s, o, p in sorted(largest, reverse=True)
    ]
    result.top_oids = {o.decode(): [decode_path(p), s] for s, o, p in largest}
    result.deepest_paths = [{"path": decode_path(p), "depth": d} for d, p in deepest]
    totals, widths = _directory_totals(dirs)
    result.biggest_directories = [
        {"path": path, "files": files, "size": size}
        for path, (files, size) in sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))[:keep]
    ]
    result.widest_directories = [
        {"path": path or ".", "entries": count}
        for path, count in sorted(widths.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
    ]
    result.extensions = [
        {"extension": ext or "(none)", "files": files, "size": size}
        for ext, (files, size) in sorted(exts.items(), key=lambda kv: (-kv[1][1], kv[0]))[:keep]
    ]
    binary_exts = set(settings.binary_extensions)
    for path_bytes, oid, size in sorted(big_candidates, key=lambda c: -c[2]):
        path = decode_path(path_bytes)
        ext = os.path.splitext(path)[1].lower()
        if ext in binary_exts:
            reason = f"binary type {ext}"
        elif _sniff_binary(info, path):
            reason = "binary content"
        else:
            continue
        result.lfs_candidates.append({"path": path, "size": size, "oid": oid.decode(), "reason": reason})
    # Directory patterns ("node_modules/"): count the outermost matching directory only.
    junk_dirs: dict[str, JunkMatch] = {}
    if matcher.dir_literals or matcher.dir_globs:
        for path in sorted(totals):
            parts = path.split("/")
            for depth, name in enumerate(parts):
                hit = matcher.directory(name)
                if hit:
                    root = "/".join(parts[: depth + 1])
                    if root == path:
                        match = junk_dirs.setdefault(hit, JunkMatch(hit))
                        match.files += totals[path][0]
                        match.size_bytes += totals[path][1]
                        match.roots.append(path + "/")
                        if len(match.examples) < 5:
                            match.examples.append(path + "/")
                    break
    # A file inside a junk directory is reported with that directory, not again by its name.
    roots = tuple(
        example.encode("utf-8", "surrogateescape") for m in junk_dirs.values() for example in m.roots
    )
    junk_files: dict[str, JunkMatch] = {}
    for pattern, path_bytes, size in junk_hits:
        if roots and path_bytes.startswith(roots):
            continue
        match = junk_files.setdefault(pattern, JunkMatch(pattern))
        match.files += 1
        match.size_bytes += size
        if len(match.examples) < 5:
            match.examples.append(decode_path(path_bytes))
    result.committed_junk = [
        {"pattern": m.pattern, "files": m.files, "size_bytes": m.size_bytes, "examples": m.examples}
        for m in sorted([*junk_dirs.values(), *junk_files.values()], key=lambda m: (-m.size_bytes, m.pattern))
    ]
    return result


def _directory_totals(dirs: dict[bytes, list[int]]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Totals per directory at every level, and entries (files + subdirectories) per directory."""
    totals: dict[str, list[int]] = {}
    entries: dict[str, int] = {}
    for raw, (files, size) in dirs.items():
        directory = decode_path(raw)
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

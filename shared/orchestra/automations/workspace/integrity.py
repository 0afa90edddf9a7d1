"""Is the object database readable? Pack checksums, and `git fsck` when something looks wrong.

A corrupt repository is a finding of the analysis, not a failure of it: the run succeeds and says
what git says is wrong, so a broken clone never counts against the automation's breaker.

Two kinds of evidence start a diagnosis:
- the analysis could not read something (a git command failed, ``ls-tree -l`` printed ``BAD``
  for a size, ``cat-file`` answered ``missing`` for an object the walk had just listed);
- a pack fails verification. Every pack is checked here against the checksums git wrote with it:
  the index's own trailer (a truncated or damaged ``.idx``), the pack's header and object count
  against its index, and a hash of the whole ``.pack`` against its trailer (flipped bytes anywhere).
  Pack files never change once written, so a pack that passed is remembered by name, size,
  modification time and inode in ``$GIT_COMMON_DIR/orchestra/workspace-packs.json`` and not hashed
  again; a full (scheduled) analysis hashes every pack afresh.

The diagnosis runs ``git fsck --no-progress --no-dangling --connectivity-only`` (reachable
objects present and parseable: cheap), then, when that finds nothing, a full ``git fsck`` (every
object's content, every pack's checksums). Its output is bounded: the first 64 KiB, repeated lines
once, at most ``MAX_PROBLEMS`` lines of at most ``MAX_LINE_CHARS`` characters.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gitio import Git
from .repo import RepoInfo
from .reportcache import cache_file, read_cache, write_cache

CACHE_VERSION = 1
CACHE_NAME = "workspace-packs.json"
FSCK_TIMEOUT_SECONDS = 600.0
FSCK_OUTPUT_BYTES = 64 * 1024
MAX_PROBLEMS = 20
MAX_LINE_CHARS = 300
MAX_EVIDENCE = 10

_IDX_V2_MAGIC = b"\377tOc"
# Words that make a line of fsck's output say what is wrong (rather than how it noticed).
_TELLING = ("corrupt", "mismatch", "missing", "wrong", "invalid", "bad ", "broken", "truncated", "not opened")
_NAMES_FILE = re.compile(r"objects/|pack-[0-9a-f]")
_NAMES_OBJECT = re.compile(r"\b[0-9a-f]{40}(?:[0-9a-f]{24})?\b")
# Lines that mean history itself is damaged: objects reachable from refs are gone or unreadable.
_UNREACHABLE_HISTORY = ("missing", "broken link", "invalid sha1 pointer", "bad object", "invalid reflog")


@dataclass
class PackCheck:
    verified: int = 0  # packs whose checksums were computed now
    cached: int = 0  # packs that passed before and have not changed since
    problems: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Fsck:
    command: str
    exit_code: int | None  # None: did not finish in time
    problems: list[str]
    truncated: bool

    @property
    def found(self) -> bool:
        return self.exit_code is not None and (self.exit_code != 0 or bool(self.problems))


@dataclass
class Integrity:
    """The verdict on the object database, and the evidence for it."""

    corrupt: bool = False
    packs: PackCheck = field(default_factory=PackCheck)
    evidence: list[str] = field(default_factory=list)  # what the analysis could not read
    fsck: list[Fsck] = field(default_factory=list)
    history_lost: bool = False  # objects reachable from refs are missing or unreadable

    @property
    def problems(self) -> list[str]:
        """What is wrong, most telling first: git's words when fsck found it, else ours."""
        found = [line for run in self.fsck if run.found for line in run.problems]
        if not found:
            found = [*self.packs.problems, *self.evidence]
        return sorted(found, key=lambda line: -_telling(line))

    @property
    def summary(self) -> str:
        problems = self.problems
        if not problems:
            return ""
        first = problems[0].removeprefix("error: ").removeprefix("fatal: ")
        more = len(problems) - 1
        return first + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "corrupt": self.corrupt,
            "summary": self.summary,
            "packs_verified": self.packs.verified,
            "packs_cached": self.packs.cached,
            "pack_problems": self.packs.problems,
            "analysis_errors": self.evidence,
            "fsck": [
                {
                    "command": run.command,
                    "exit_code": run.exit_code,
                    "problems": run.problems,
                    "truncated": run.truncated,
                }
                for run in self.fsck
            ],
        }


def _telling(line: str) -> int:
    """How much a line says: what is wrong (a telling word) and where, a file of the object
    database (the root cause, usually) rather than an object id (often a consequence)."""
    lower = line.lower()
    return (
        2 * any(word in lower for word in _TELLING)
        + 2 * bool(_NAMES_FILE.search(line))
        + bool(_NAMES_OBJECT.search(line))
    )


def _bounded(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def describe_failure(where: str, exc: BaseException) -> str:
    """One bounded line for an analysis step that could not read the repository."""
    text = " ".join(str(exc).split())
    return _bounded(f"{where}: {type(exc).__name__}: {text}")


# ------------------------------------------------------------------ packs


def _hash_name(info: RepoInfo) -> str:
    return "sha256" if info.object_format == "sha256" else "sha1"


def _identity(*paths: Path) -> list[int]:
    out: list[int] = []
    for path in paths:
        st = path.stat()
        out += [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _index_count(idx: bytes, width: int) -> tuple[int | None, str | None]:
    """(objects in the index, what is wrong with its size) for index versions 1 and 2."""
    if idx[:4] == _IDX_V2_MAGIC:
        version = int.from_bytes(idx[4:8], "big")
        if version != 2:
            return None, None  # a version this check does not know: left to git
        if len(idx) < 8 + 1024 + 2 * width:
            return None, f"index is {len(idx)} bytes, too small for its header (truncated)"
        count = int.from_bytes(idx[8 + 255 * 4 : 8 + 256 * 4], "big")
        minimum = 8 + 1024 + count * (width + 8) + 2 * width
        if len(idx) < minimum or (len(idx) - minimum) % 8:
            return count, f"index is {len(idx)} bytes, wrong for its {count} objects (truncated or damaged)"
        return count, None
    if len(idx) < 1024 + 2 * width:
        return None, f"index is {len(idx)} bytes, too small for its header (truncated)"
    count = int.from_bytes(idx[255 * 4 : 256 * 4], "big")
    if len(idx) != 1024 + count * (width + 4) + 2 * width:
        return count, f"index is {len(idx)} bytes, wrong for its {count} objects (truncated or damaged)"
    return count, None


def check_pack(idx_path: Path, pack_path: Path, hash_name: str) -> str | None:
    """What is wrong with one pack and its index, or None when every checksum matches."""
    width = hashlib.new(hash_name).digest_size
    try:
        idx = idx_path.read_bytes()
    except OSError as exc:
        return f"{idx_path.name}: unreadable ({exc.strerror})"
    count, problem = _index_count(idx, width)
    if problem:
        return f"{idx_path.name}: {problem}"
    if count is None:
        return None
    if hashlib.new(hash_name, memoryview(idx)[:-width]).digest() != idx[-width:]:
        return f"{idx_path.name}: index checksum mismatch (the file changed after git wrote it)"
    recorded = idx[-2 * width : -width]
    try:
        with open(pack_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 12 + width:
                return f"{pack_path.name}: {size} bytes, too small to be a pack (truncated)"
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                view = memoryview(data)
                try:
                    if bytes(view[:4]) != b"PACK" or int.from_bytes(view[4:8], "big") not in (2, 3):
                        return f"{pack_path.name}: not a pack file (bad header)"
                    objects = int.from_bytes(view[8:12], "big")
                    if objects != count:
                        return f"{pack_path.name}: holds {objects} objects, its index lists {count}"
                    trailer = bytes(view[-width:])
                    if trailer != recorded:
                        return f"{pack_path.name}: trailer does not match the checksum recorded in its index"
                    # One call over the mapped file: hashlib releases the GIL while it works.
                    if hashlib.new(hash_name, view[:-width]).digest() != trailer:
                        return (
                            f"{pack_path.name}: pack checksum mismatch (the file changed after git wrote it)"
                        )
                finally:
                    view.release()
    except OSError as exc:
        return f"{pack_path.name}: unreadable ({exc.strerror})"
    return None


def verify_packs(info: RepoInfo, *, use_cache: bool, full: bool) -> PackCheck:
    """Check every pack that has an index (a pack without one, or an index without its pack, is
    garbage git ignores: ``git count-objects`` reports it)."""
    result = PackCheck()
    pack_dir = info.objects_dir / "pack"
    try:
        names = {entry.name for entry in os.scandir(pack_dir)}
    except OSError:
        return result  # no pack directory: nothing packed
    path = cache_file(info, CACHE_NAME)
    cached = (read_cache(path) or {}) if use_cache and not full else {}
    known = cached.get("packs") if cached.get("version") == CACHE_VERSION else None
    known = known if isinstance(known, dict) else {}
    passed: dict[str, list[int]] = {}
    hash_name = _hash_name(info)
    for name in sorted(names):
        if not (name.startswith("pack-") and name.endswith(".idx")):
            continue
        stem = name[: -len(".idx")]
        if f"{stem}.pack" not in names:
            continue
        idx_path, pack_path = pack_dir / name, pack_dir / f"{stem}.pack"
        try:
            identity = _identity(idx_path, pack_path)
        except OSError:
            continue  # removed by a concurrent gc since the directory was listed
        if known.get(stem) == identity:
            result.cached += 1
            passed[stem] = identity
            continue
        problem = check_pack(idx_path, pack_path, hash_name)
        result.verified += 1
        if problem is None:
            passed[stem] = identity
        elif pack_path.exists() and idx_path.exists():  # not just replaced by a concurrent repack
            result.problems.append(problem)
    if use_cache and passed != known:
        result.note = write_cache(path, {"version": CACHE_VERSION, "packs": passed}, "pack check cache")
    return result


# ------------------------------------------------------------------ fsck


def run_fsck(git: Git, *, connectivity_only: bool, timeout: float = FSCK_TIMEOUT_SECONDS) -> Fsck:
    """``git fsck``; its output (stdout and stderr together) read up to FSCK_OUTPUT_BYTES."""
    args = ["fsck", "--no-progress", "--no-dangling", *(["--connectivity-only"] if connectivity_only else [])]
    command = "git " + " ".join(args)
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            ["git", "-C", git.repo, *args],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=git.env,
        )
        try:
            exit_code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            exit_code = None
        written = output.tell()
        output.seek(0)
        raw = output.read(FSCK_OUTPUT_BYTES)
    lines: list[str] = []
    seen: set[str] = set()
    text = raw.decode("utf-8", errors="replace")
    if written > len(raw):
        text = text.rpartition("\n")[0]  # the last line was cut
    for line in text.splitlines():
        line = line.strip()
        if not line or line in seen or line.startswith(("dangling ", "notice:", "Checking ")):
            continue
        seen.add(line)
        lines.append(_bounded(line))
    truncated = written > len(raw) or len(lines) > MAX_PROBLEMS
    return Fsck(command=command, exit_code=exit_code, problems=lines[:MAX_PROBLEMS], truncated=truncated)


def diagnose(
    git: Git, packs: PackCheck, evidence: list[str], *, timeout: float = FSCK_TIMEOUT_SECONDS
) -> Integrity:
    """Ask ``git fsck`` about a repository the analysis could not fully read or whose packs fail
    their checksums: connectivity first, the full check when that finds nothing."""
    integrity = Integrity(packs=packs, evidence=evidence[:MAX_EVIDENCE])
    if not packs.problems and not evidence:
        return integrity
    quick = run_fsck(git, connectivity_only=True, timeout=timeout)
    integrity.fsck.append(quick)
    if not quick.found and quick.exit_code is not None:
        integrity.fsck.append(run_fsck(git, connectivity_only=False, timeout=timeout))
    found = any(run.found for run in integrity.fsck)
    # A checksum that does not match is corruption whatever fsck says; an unreadable object that
    # fsck cannot confirm was more likely moved by a concurrent gc.
    integrity.corrupt = found or bool(packs.problems)
    integrity.history_lost = quick.found or any(
        word in line.lower()
        for run in integrity.fsck
        for line in run.problems
        for word in _UNREACHABLE_HISTORY
    )
    return integrity

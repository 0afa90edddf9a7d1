"""The pre-commit check: staged files only, fast on any repository size.

Cost is one ``git diff --cached --raw`` (what git needs anyway to know what is staged) plus work
proportional to the staged files: their sizes from ``git cat-file --batch-check`` and, for text
files within the limit, their *staged* content from ``git cat-file --batch`` (never the work tree,
which may differ from what is being committed).

Blocks (exit 1):
- a staged file above the size limit (default 500 KiB, as pre-commit-hooks'
  ``check-added-large-files``; files with the ``filter=lfs`` attribute are exempt);
- a merge-conflict marker: a line starting with ``<<<<<<< `` or ``>>>>>>> ``; a lone
  ``=======`` line counts too when the file also has one of those or a merge is in progress
  (on its own it is a common reStructuredText/Markdown underline).

Standard library only, and no pydantic or YAML unless ``CONFIG_PATH`` names a config file:
this runs on every commit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from ...errors import OrchestraError
from .gitio import Git, GitError, decode_path, display_path
from .settings_defaults import PRECOMMIT_CONFLICT_MARKERS_DEFAULT, PRECOMMIT_MAX_KB_DEFAULT

SNIFF_BYTES = 8000
_STRONG = (b"<<<<<<< ", b">>>>>>> ")
_SEPARATOR = b"======="


# Plain classes, not dataclasses: importing dataclasses (and inspect) costs more than this check.
class Problem:
    def __init__(
        self,
        path: str,
        kind: str,
        message: str,
        fix: str,
        lines: list[int] | None = None,
        size: int | None = None,
    ) -> None:
        self.path = path
        self.kind = kind  # "large-file" | "conflict-marker"
        self.message = message
        self.fix = fix
        self.lines = lines or []
        self.size = size


class CheckResult:
    def __init__(self, staged: int = 0) -> None:
        self.staged = staged
        self.problems: list[Problem] = []

    @property
    def blocked(self) -> bool:
        return bool(self.problems)


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 10 * 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def staged_entries(git: Git) -> list[tuple[str, str, bytes]]:
    """(mode, oid, path) of staged additions and modifications."""
    raw = git.run(
        "diff", "--cached", "--raw", "-z", "--no-renames", "--diff-filter=AM", "--no-abbrev", "--no-ext-diff"
    )
    parts = raw.split(b"\0")
    entries = []
    # -z --raw: ":oldmode newmode oldoid newoid STATUS\0path\0" per entry.
    for index in range(0, len(parts) - 1, 2):
        meta = parts[index]
        if not meta.startswith(b":"):
            continue
        fields = meta[1:].split(b" ")
        if len(fields) < 5:
            continue
        entries.append((fields[1].decode(), fields[3].decode(), parts[index + 1]))
    return entries


def _sizes(git: Git, oids: list[str]) -> dict[str, int]:
    out = git.run(
        "cat-file",
        "--batch-check=%(objectname) %(objectsize)",
        input="".join(f"{o}\n" for o in oids).encode(),
    )
    sizes = {}
    for line in out.decode().splitlines():
        oid, _, size = line.partition(" ")
        if size.isdigit():
            sizes[oid] = int(size)
    return sizes


def _lfs_paths(git: Git, paths: list[bytes]) -> set[bytes]:
    if not paths:
        return set()
    out = git.run("check-attr", "--cached", "-z", "--stdin", "filter", input=b"\0".join(paths) + b"\0")
    fields = out.split(b"\0")
    return {fields[i] for i in range(0, len(fields) - 2, 3) if fields[i + 2] == b"lfs"}


def _contents(git: Git, oids: list[str]) -> dict[str, bytes]:
    out = git.run("cat-file", "--batch", input="".join(f"{o}\n" for o in oids).encode())
    contents: dict[str, bytes] = {}
    position = 0
    while position < len(out):
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split(b" ")
        if len(header) != 3:  # "<oid> missing"
            position = header_end + 1
            continue
        size = int(header[2])
        start = header_end + 1
        contents[header[0].decode()] = out[start : start + size]
        position = start + size + 1
    return contents


def _line_starts(content: bytes, marker: bytes) -> list[int]:
    """Offsets where a line starts with ``marker``."""
    found = [0] if content.startswith(marker) else []
    needle = b"\n" + marker
    position = content.find(needle)
    while position >= 0:
        found.append(position + 1)
        position = content.find(needle, position + 1)
    return found


def conflict_lines(content: bytes, in_merge: Callable[[], bool]) -> list[int]:
    """1-based line numbers of conflict markers ([] when the file is clean)."""
    if b"\0" in content[:SNIFF_BYTES]:
        return []
    strong = [offset for marker in _STRONG for offset in _line_starts(content, marker)]
    # A lone "=======" (optionally followed by a space or CR) counts only beside a strong marker
    # or during a merge: on its own it is a common Markdown / reStructuredText underline.
    size = len(_SEPARATOR)
    separators = [
        offset
        for offset in _line_starts(content, _SEPARATOR)
        if content[offset + size : offset + size + 1] in (b"", b"\n", b" ")
        or content[offset + size : offset + size + 2] == b"\r\n"
    ]
    if not strong and not (separators and in_merge()):
        return []
    return sorted(content.count(b"\n", 0, offset) + 1 for offset in strong + separators)


def check_staged(
    repo: str = ".",
    *,
    max_kb: int = PRECOMMIT_MAX_KB_DEFAULT,
    conflict_markers: bool = PRECOMMIT_CONFLICT_MARKERS_DEFAULT,
    inherit_repo_env: bool = True,
) -> CheckResult:
    # Inside a hook git may point us at a temporary index (GIT_INDEX_FILE): keep that environment.
    git = Git(repo, inherit_repo=inherit_repo_env)
    entries = [(mode, oid, path) for mode, oid, path in staged_entries(git) if mode != "160000"]
    result = CheckResult(staged=len(entries))
    if not entries:
        return result
    limit = max_kb * 1024
    sizes = _sizes(git, sorted({oid for _, oid, _ in entries}))
    too_big = [(oid, path) for _, oid, path in entries if -(-sizes.get(oid, 0) // 1024) > max_kb]
    exempt = _lfs_paths(git, [path for _, path in too_big]) if too_big else set()
    for oid, path in too_big:
        if path in exempt:
            continue
        shown = display_path(decode_path(path))
        ext = os.path.splitext(shown)[1]
        result.problems.append(
            Problem(
                path=shown,
                kind="large-file",
                size=sizes[oid],
                message=f"{shown}: {_kib(sizes[oid])} staged, above the {max_kb} KiB limit",
                fix=(
                    f"unstage it (git restore --staged -- '{shown}'), then track it with Git LFS "
                    f"(git lfs track '*{ext or shown}') or add it to .gitignore; raise "
                    "automations.workspace.settings.precommit_max_kb if it really belongs in git"
                ),
            )
        )
    if conflict_markers:
        merge_state: list[bool] = []

        def in_merge() -> bool:  # asked only for a lone "=======" line
            if not merge_state:
                merge_state.append(_in_merge(git))
            return merge_state[0]

        scan = sorted({oid for _, oid, _ in entries if 0 < sizes.get(oid, 0) <= max(limit, 1)})
        contents = _contents(git, scan) if scan else {}
        for _, oid, path in entries:
            content = contents.get(oid)
            if content is None:
                continue
            lines = conflict_lines(content, in_merge)
            if lines:
                shown = display_path(decode_path(path))
                where = ", ".join(str(n) for n in lines[:5]) + (" …" if len(lines) > 5 else "")
                result.problems.append(
                    Problem(
                        path=shown,
                        kind="conflict-marker",
                        lines=lines,
                        message=f"{shown}:{lines[0]}: merge-conflict marker (line {where})",
                        fix=f"resolve the conflict, delete the marker lines, then git add -- '{shown}'",
                    )
                )
    return result


def _in_merge(git: Git) -> bool:
    try:
        git_dir = git.text("rev-parse", "--absolute-git-dir").strip()
    except GitError:
        return False
    return os.path.exists(os.path.join(git_dir, "MERGE_HEAD"))


def settings_from_config() -> tuple[int, bool]:
    """(max_kb, conflict_markers) from CONFIG_PATH's workspace settings, else the defaults."""
    path = os.environ.get("CONFIG_PATH")
    max_kb, markers = PRECOMMIT_MAX_KB_DEFAULT, PRECOMMIT_CONFLICT_MARKERS_DEFAULT
    if not path:
        return max_kb, markers
    # Only when a config file is named: keeps the common path fast. The same bounded, checked
    # YAML reading as the full configuration loader (no pydantic import).
    from ...yamlsafe import MAX_CONFIG_BYTES, YamlTextError, load

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        data = load(raw, source=path) or {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except YamlTextError as exc:
        raise ValueError(f"cannot read configuration: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    settings: Any = data
    for key in ("automations", "workspace", "settings"):
        settings = settings.get(key) if isinstance(settings, dict) else None
    if not isinstance(settings, dict):
        settings = {}
    value = settings.get("precommit_max_kb", max_kb)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{path}: automations.workspace.settings.precommit_max_kb: expected a positive integer, got {value!r}"
        )
    flag = settings.get("precommit_conflict_markers", markers)
    if not isinstance(flag, bool):
        raise ValueError(
            f"{path}: automations.workspace.settings.precommit_conflict_markers: expected true or false, got {flag!r}"
        )
    return value, flag


def report(result: CheckResult, stream: object = None) -> None:
    out = stream or sys.stderr
    if not result.blocked:
        return
    print(f"orchestra workspace check: commit blocked ({len(result.problems)} problem(s))", file=out)  # type: ignore[call-overload]
    for problem in result.problems:
        print(f"  {problem.message}", file=out)  # type: ignore[call-overload]
        print(f"    fix: {problem.fix}", file=out)  # type: ignore[call-overload]
    print("  (to commit anyway, once: git commit --no-verify)", file=out)  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestra.automations.workspace.precommit [--max-kb N] [--repo PATH]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    repo = "."
    max_kb: int | None = None
    while args:
        arg = args.pop(0)
        if arg == "--analyze-only":
            continue  # accepted for the seed's hook command; this check never changes anything
        if arg in ("--repo", "--max-kb") and args:
            value = args.pop(0)
            if arg == "--repo":
                repo = value
            elif value.isdigit() and int(value) > 0:
                max_kb = int(value)
            else:
                print(f"--max-kb: expected a positive integer, got {value!r}", file=sys.stderr)
                return 2
        else:
            print(
                f"unknown argument {arg!r}; accepted: --repo PATH, --max-kb N, --analyze-only",
                file=sys.stderr,
            )
            return 2
    try:
        configured_kb, markers = settings_from_config()
    except ValueError as exc:
        print(f"orchestra workspace check: {exc}", file=sys.stderr)
        return 2
    try:
        result = check_staged(repo, max_kb=max_kb or configured_kb, conflict_markers=markers)
    except OrchestraError as exc:
        print(f"orchestra workspace check: {exc}", file=sys.stderr)
        return 2
    report(result)
    return 1 if result.blocked else 0


if __name__ == "__main__":
    sys.exit(main())

"""Build a large Git repository deterministically, for the workspace benchmark.

The repository is written with ``git fast-import`` (fixed identities, dates and seeded content),
so the same parameters and Git version give the same object ids. It has:

- ``--files`` files in nested directories (plus a few very deep paths) checked out in HEAD;
- ``--commits`` commits on ``main``, each editing a few files, some adding or deleting files;
- ``--large-blobs`` incompressible blobs of 1-8 MB added and deleted again in history (two
  of them stay in HEAD), and committed build outputs / caches;
- feature branches, some merged into ``main`` and some not;
- some loose, unreachable objects.

Usage: ``python bench/make_big_repo.py DIR [--files N] [--commits N] [--large-blobs N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

EXTENSIONS = (".py", ".js", ".ts", ".md", ".json", ".txt", ".css", ".html", ".go", ".rs")
IDENTITY = "Bench Builder <bench@example.invalid>"
START_EPOCH = 1_700_000_000
MARKER = ".orchestra-bench-params"


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LC_ALL="C",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Bench Builder",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="Bench Builder",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        GIT_AUTHOR_DATE=f"{START_EPOCH} +0000",
        GIT_COMMITTER_DATE=f"{START_EPOCH} +0000",
    )
    return env


class _Content:
    """Seeded text made from slices of one corpus: cheap to produce, compresses like source."""

    def __init__(self, rng: random.Random) -> None:
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 9)))]
        words += [
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 9)))
            for _ in range(1500)
        ]
        lines = []
        for _ in range(6000):
            lines.append("    " * rng.randint(0, 3) + " ".join(rng.choices(words, k=rng.randint(3, 11))))
        self.corpus = ("\n".join(lines) + "\n").encode()
        self.rng = rng

    def text(self, header: str, low: int = 200, high: int = 1400) -> bytes:
        size = self.rng.randint(low, high)
        start = self.rng.randrange(0, len(self.corpus) - size)
        return header.encode() + b"\n" + self.corpus[start : start + size]


def _paths(count: int) -> list[str]:
    """``count`` paths: src/modNNN/subNN/fileNNNN.ext in a fixed layout, a few of them deep."""
    paths = []
    per_dir = 25
    for index in range(count):
        directory, slot = divmod(index, per_dir)
        module, sub = divmod(directory, 20)
        ext = EXTENSIONS[index % len(EXTENSIONS)]
        paths.append(f"src/mod{module:03d}/sub{sub:02d}/file{slot:02d}{ext}")
    deep = "/".join(f"level{i}" for i in range(14))
    for index in range(min(5, count)):
        paths[index] = f"vendor/{deep}/deep{index}.txt"
    return paths


def _stream(files: int, commits: int, large_blobs: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    content = _Content(rng)
    paths = _paths(files)
    revisions = [0] * len(paths)
    when = START_EPOCH
    mark = 0

    def commit(ref: str, message: str, lines: list[bytes], parents: tuple[str, ...] = ()) -> Iterator[bytes]:
        nonlocal when, mark
        when += 600
        mark += 1
        msg = message.encode()
        yield f"commit {ref}\nmark :{mark}\n".encode()
        yield f"author {IDENTITY} {when} +0000\ncommitter {IDENTITY} {when} +0000\n".encode()
        yield b"data %d\n%s\n" % (len(msg), msg)
        for index, parent in enumerate(parents):
            yield f"{'from' if index == 0 else 'merge'} {parent}\n".encode()
        yield from lines
        yield b"\n"

    def modify(path: str, data: bytes) -> bytes:
        return b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)

    # Initial import: every file, plus committed build outputs and caches.
    initial = [modify(p, content.text(f"// {p} r0")) for p in paths]
    junk = [
        "build/app.o",
        "build/lib/util.o",
        "dist/bundle.min.js",
        "node_modules/leftpad/index.js",
        "node_modules/leftpad/package.json",
        "pkg/__pycache__/core.cpython-311.pyc",
        ".DS_Store",
    ]
    initial += [modify(p, content.text(f"junk {p}", 2000, 9000)) for p in junk]
    yield from commit("refs/heads/main", "Initial import", initial)
    main_mark = f":{mark}"

    # Large blobs: added at one commit, deleted a while later; the last two stay in HEAD.
    large_at: dict[int, list[tuple[str, int]]] = {}
    delete_at: dict[int, list[str]] = {}
    for index in range(large_blobs):
        path = f"assets/media/blob{index:02d}.bin" if index % 2 else f"data/dumps/dump{index:02d}.sql.gz"
        added = 1 + (index * (commits - 2)) // max(large_blobs, 1)
        large_at.setdefault(added, []).append((path, 1_000_000 + (index * 7_000_000) // max(large_blobs, 1)))
        if index < large_blobs - 2:
            delete_at.setdefault(min(commits - 1, added + 50 + index), []).append(path)

    branch_every = max(commits // 12, 1)
    merged_branches = 0
    for number in range(1, commits):
        lines = []
        for _ in range(3):
            which = rng.randrange(len(paths))
            revisions[which] += 1
            path = paths[which]
            lines.append(modify(path, content.text(f"// {path} r{revisions[which]}")))
        for path, size in large_at.get(number, []):
            data = rng.randbytes(size)
            lines.append(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)) + data + b"\n")
        for path in delete_at.get(number, []):
            lines.append(b"D %s\n" % path.encode())
        if number % 97 == 0:
            new_path = f"src/added/n{number:05d}.py"
            lines.append(modify(new_path, content.text(f"# {new_path}")))
        yield from commit("refs/heads/main", f"Change {number}", lines, (main_mark,))
        main_mark = f":{mark}"

        if number % branch_every == 0:
            # A short feature branch off main: even ones merged back, odd ones left open.
            name = f"refs/heads/feature/f{number:05d}"
            branch_path = f"features/f{number:05d}.md"
            yield from commit(
                name, f"Feature {number}", [modify(branch_path, content.text(branch_path))], (main_mark,)
            )
            feature_mark = f":{mark}"
            if merged_branches % 2 == 0:
                yield from commit("refs/heads/main", f"Merge feature {number}", [], (main_mark, feature_mark))
                main_mark = f":{mark}"
            merged_branches += 1
    yield b"done\n"


def build(directory: Path, files: int, commits: int, large_blobs: int, seed: int = 7) -> Path:
    """Create the repository in ``directory`` (reused when already built with these parameters by
    this version of the generator: its source's digest is part of the key)."""
    generator = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    params = f"files={files} commits={commits} large_blobs={large_blobs} seed={seed} generator={generator}\n"
    marker = directory / ".git" / MARKER
    if marker.is_file() and marker.read_text() == params:
        return directory
    if marker.is_file():
        shutil.rmtree(directory)  # built by another version of this generator: ours to replace
    elif directory.exists() and any(directory.iterdir()):
        raise SystemExit(f"{directory}: exists and is not a repository built with {params.strip()}")
    env = _git_env()
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(directory)], check=True, env=env)
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=directory, stdin=subprocess.PIPE, env=env
    )
    assert importer.stdin is not None
    for chunk in _stream(files, commits, large_blobs, seed):
        importer.stdin.write(chunk)
    importer.stdin.close()
    if importer.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=directory, check=True, env=env)
    # Loose, unreachable objects, as a crashed tool or an abandoned rebase leaves them.
    rng = random.Random(seed + 1)
    loose = b"".join(b"loose object %d %s\0" % (i, rng.randbytes(16).hex().encode()) for i in range(300))
    hasher = subprocess.Popen(
        ["git", "hash-object", "-w", "--stdin-paths", "--no-filters"],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    scratch = directory / ".git" / "loose-src"
    scratch.mkdir()
    names = []
    for index, data in enumerate(loose.split(b"\0")[:-1]):
        path = scratch / f"{index}"
        path.write_bytes(data)
        names.append(str(path))
    assert hasher.stdin is not None
    hasher.stdin.write(("\n".join(names) + "\n").encode())
    hasher.stdin.close()
    hasher.wait()
    for name in names:
        os.unlink(name)
    scratch.rmdir()
    marker.write_text(params)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=3_000)
    parser.add_argument("--large-blobs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    build(args.directory, args.files, args.commits, args.large_blobs, args.seed)
    print(args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Build one deployable source archive per Cloud Function: build/functions/NAME.zip.

Each archive holds what the Cloud Functions Python 3.11 buildpack needs and nothing else:

    main.py            functions/NAME/main.py (plus any other files of functions/NAME/)
    orchestra/         the shared library, vendored next to main.py so `import orchestra` works
    orchestra_automation-VERSION.dist-info/
                       the library's distribution metadata (METADATA, entry_points.txt), so
                       that the automations it declares in the ``orchestra.automations``
                       entry-point group are discovered from the vendored copy too
    requirements.txt   the repository's runtime pins (requirements.txt)

Archives are reproducible: the same inputs give byte-identical zips (entries sorted, fixed
timestamps and permissions, no caches), so Terraform's content hash changes only when the code
does. Usage: python scripts/package_functions.py [--out build/functions] [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
LIBRARY_DIR = ROOT / "shared" / "orchestra"
REQUIREMENTS = ROOT / "requirements.txt"
PYPROJECT = ROOT / "pyproject.toml"

# 1980-01-01 is the earliest time a zip entry can carry.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
SKIPPED_NAMES = {".DS_Store"}
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[^\s;#]+(\s*;.*)?$")


class PackagingError(Exception):
    """Inputs that cannot make a deployable archive (missing function, unpinned requirement)."""


def _wanted(path: Path, base: Path) -> bool:
    rel = path.relative_to(base)
    if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
        return False
    return path.suffix not in SKIPPED_SUFFIXES and path.name not in SKIPPED_NAMES


def _files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file() and _wanted(p, base))


def runtime_requirements(path: Path = REQUIREMENTS) -> str:
    """The runtime pins, one per line, comments dropped; every line must be an exact pin."""
    lines: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _REQUIREMENT.match(line):
            raise PackagingError(
                f"{path}:{number}: {raw.strip()!r} is not an exact pin; the function archive "
                "accepts only NAME==VERSION lines (no -r, -e, URLs or ranges)"
            )
        lines.append(line)
    if not lines:
        raise PackagingError(f"{path}: no requirements found")
    return "\n".join(lines) + "\n"


def distribution_metadata(pyproject: Path = PYPROJECT) -> list[tuple[str, bytes]]:
    """The vendored library's ``*.dist-info`` files, from ``pyproject.toml``: entry points live in
    a distribution's metadata, and a vendored source tree has none of its own."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name, version = project["name"], project["version"]
    groups: dict[str, dict[str, str]] = {"console_scripts": project.get("scripts", {})}
    groups.update(project.get("entry-points", {}))
    lines: list[str] = []
    for group, entries in groups.items():
        if entries:
            lines.append(f"[{group}]")
            lines.extend(f"{key} = {value}" for key, value in entries.items())
            lines.append("")
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    return [(f"{info}/METADATA", metadata.encode()), (f"{info}/entry_points.txt", "\n".join(lines).encode())]


def available_functions(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    if not functions_dir.is_dir():
        return []
    return sorted(d.name for d in functions_dir.iterdir() if (d / "main.py").is_file())


def archive_entries(
    name: str, functions_dir: Path = FUNCTIONS_DIR, library_dir: Path = LIBRARY_DIR
) -> list[tuple[str, bytes]]:
    """(archive path, content) for every file of the function's archive, sorted by path."""
    source = functions_dir / name
    if not (source / "main.py").is_file():
        raise PackagingError(
            f"{source / 'main.py'}: not found; functions with a main.py: "
            f"{', '.join(available_functions(functions_dir)) or '(none)'}"
        )
    if not (library_dir / "__init__.py").is_file():
        raise PackagingError(f"{library_dir}: not the orchestra package (no __init__.py)")
    entries: dict[str, bytes] = {}
    for path in _files(source):
        rel = path.relative_to(source).as_posix()
        if rel == "requirements.txt" or rel.split("/", 1)[0] == "orchestra":
            # The archive's requirements and library always come from the repository.
            continue
        entries[rel] = path.read_bytes()
    for path in _files(library_dir):
        entries["orchestra/" + path.relative_to(library_dir).as_posix()] = path.read_bytes()
    entries.update(distribution_metadata())
    entries["requirements.txt"] = runtime_requirements().encode()
    return sorted(entries.items())


def write_archive(entries: Iterable[tuple[str, bytes]], target: Path) -> str:
    """Write a deterministic zip; returns its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permission bits below are honoured
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    # Replace atomically: Terraform never sees a half-written archive.
    partial.replace(target)
    return hashlib.sha256(target.read_bytes()).hexdigest()


def package(names: Sequence[str], out_dir: Path) -> dict[str, str]:
    selected = list(names) or available_functions()
    if not selected:
        raise PackagingError(f"{FUNCTIONS_DIR}: no function directories with a main.py")
    digests: dict[str, str] = {}
    for name in selected:
        digests[name] = write_archive(archive_entries(name), out_dir / f"{name}.zip")
    return digests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "names", nargs="*", help="functions to package (default: every functions/NAME/main.py)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "functions", help="output directory")
    args = parser.parse_args(argv)
    try:
        digests = package(args.names, args.out)
    except (PackagingError, OSError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 2
    for name, digest in digests.items():
        print(f"{args.out / (name + '.zip')}  sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

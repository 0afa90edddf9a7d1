"""Deployment benchmarks, as ratios against baselines measured in the same run.

1. Cold start: importing each packaged function (main.py and the vendored library, from its
   unzipped archive, in a fresh interpreter) against importing functions-framework alone, which
   every Cloud Function pays anyway. A ratio near 1 means the function adds little to a cold start.
2. Packaging: building one reproducible archive against a plain zip of the same files.

Run: .venv/bin/python bench/deploy.py   (about 15 s unloaded; medians of 3: the ratios hold from 3 on)
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3

IMPORT_MAIN = """
import os, sys
shared = os.path.realpath(sys.argv[1])
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != shared]
sys.path.insert(0, os.getcwd())
import main
"""


def _packager():
    spec = importlib.util.spec_from_file_location(
        "package_functions", ROOT / "scripts" / "package_functions.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _median_seconds(argv: list[str], cwd: Path) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    packager = _packager()
    names = packager.available_functions()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = work / "archives"
        packager.package(names, out)

        baseline = _median_seconds([sys.executable, "-s", "-c", "import functions_framework"], work)
        print(
            f"cold start, median of {REPEATS} fresh interpreters (baseline: import functions_framework = {baseline:.3f} s)"
        )
        for name in names:
            directory = work / name
            with zipfile.ZipFile(out / f"{name}.zip") as archive:
                archive.extractall(directory)
            seconds = _median_seconds(
                [sys.executable, "-s", "-c", IMPORT_MAIN, str(ROOT / "shared")], directory
            )
            print(f"  {name:<12} import main: {seconds:.3f} s  = {seconds / baseline:.2f}x baseline")

        entries = packager.archive_entries(names[0])
        plain_times, repro_times = [], []
        for i in range(REPEATS):
            start = time.perf_counter()
            with zipfile.ZipFile(work / f"plain{i}.zip", "w", compression=zipfile.ZIP_DEFLATED) as plain:
                for arcname, data in entries:
                    plain.writestr(arcname, data)
            plain_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            packager.write_archive(entries, work / f"repro{i}.zip")
            repro_times.append(time.perf_counter() - start)
        plain_s, repro_s = statistics.median(plain_times), statistics.median(repro_times)
        size = (work / "repro0.zip").stat().st_size
        plain_size = (work / "plain0.zip").stat().st_size
        print(
            f"packaging {names[0]} ({len(entries)} files): reproducible {repro_s * 1000:.0f} ms vs plain zip "
            f"{plain_s * 1000:.0f} ms = {repro_s / plain_s:.2f}x; size {size / 1024:.0f} KiB = "
            f"{size / plain_size:.2f}x plain"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

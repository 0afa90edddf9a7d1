"""Deployment benchmarks, as ratios against baselines measured in the same run.

1. Cold start: importing each packaged function (main.py and the vendored library, from its
   unzipped archive, in a fresh interpreter) against importing functions-framework alone, which
   every Cloud Function pays anyway. A ratio near 1 means the function adds little to a cold start.
2. Packaging: building one reproducible archive against a plain zip of the same files.

The cold starts are interleaved: each repetition starts the baseline interpreter, then every
function's, so that a burst of load on a shared machine hits a function and the baseline beside
it; a function's ratio is the median over repetitions of its time / that repetition's baseline.

Run: .venv/bin/python bench/deploy.py   (about 15 s unloaded, 26-41 s at load 14-16 on 2 cores;
medians of 3: the ratios hold from 3 on)
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


def _seconds(argv: list[str], cwd: Path) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    packager = _packager()
    names = packager.available_functions()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out = work / "archives"
        packager.package(names, out)

        for name in names:
            with zipfile.ZipFile(out / f"{name}.zip") as archive:
                archive.extractall(work / name)
        baselines: list[float] = []
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(REPEATS):
            baselines.append(_seconds([sys.executable, "-s", "-c", "import functions_framework"], work))
            for name in names:
                samples[name].append(
                    _seconds([sys.executable, "-s", "-c", IMPORT_MAIN, str(ROOT / "shared")], work / name)
                )
        baseline = statistics.median(baselines)
        print(
            f"cold start, median of {REPEATS} fresh interpreters, interleaved "
            f"(baseline: import functions_framework = {baseline:.3f} s)"
        )
        for name in names:
            seconds = statistics.median(samples[name])
            ratio = statistics.median(s / b for s, b in zip(samples[name], baselines, strict=True))
            print(f"  {name:<12} import main: {seconds:.3f} s  = {ratio:.2f}x baseline")

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

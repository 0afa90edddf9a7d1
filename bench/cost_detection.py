#!/usr/bin/env python3
"""Cost anomaly detection curve: recall per anomaly size and overall precision.

Generates series with a weekly cycle, growth and daily noise, injects anomalies of graded size
(1.2x to 4x the expected day) over several seeds, runs the detector with its default settings and
prints, from this run's figures: recall per size, overall precision, and the share of clean days
flagged. Beside it, the simple baseline the detector replaces, with the same absolute floor: a day
above the mean + 3 standard deviations of the previous 28 days. Sizes under 1 + relative margin are below the detector's line by design: their recall
is what noise alone pushes over it.

    .venv/bin/python bench/cost_detection.py [--series 200] [--seeds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from orchestra.automations.cost import AnomalySettings
from orchestra.automations.cost import analysis as an
from orchestra.automations.cost.generator import GRADED_SIZES, graded_anomalies


def mean_sigma(values: np.ndarray, window: int, sigmas: float, floor: float) -> set[tuple[int, int]]:
    """Days above mean + ``sigmas`` standard deviations of the previous ``window`` days (and + floor)."""
    history = sliding_window_view(values[:, :-1], window, axis=1)
    mean, std = history.mean(axis=2), history.std(axis=2)
    delta = values[:, window:] - mean
    rows, cols = np.nonzero((delta > sigmas * std) & (delta > floor))
    return {(int(r), int(c) + window) for r, c in zip(rows, cols, strict=True)}


class Tally:
    def __init__(self) -> None:
        self.injected = {size: 0 for size in GRADED_SIZES}
        self.caught = {size: 0 for size in GRADED_SIZES}
        self.flagged = self.hits = 0

    def add(self, found: set[tuple[int, int]], truth: dict[tuple[int, int], float]) -> None:
        for key, size in truth.items():
            self.injected[size] += 1
            self.caught[size] += key in found
        self.flagged += len(found)
        self.hits += len(found & truth.keys())

    def recall(self, sizes: list[float]) -> float:
        total = sum(self.injected[s] for s in sizes)
        return sum(self.caught[s] for s in sizes) / total if total else float("nan")

    def precision(self) -> float:
        return self.hits / self.flagged if self.flagged else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    settings = AnomalySettings()
    ours, simple = Tally(), Tally()
    evaluated = clean = 0
    started = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        case = graded_anomalies(seed, series=args.series, window_days=settings.window_days)
        series = an.DailySeries(values=case.values, keys=case.keys, first_day=case.first_day)
        truth = {
            (int(s), int(c)): float(f) for s, c, f in zip(case.series, case.column, case.factor, strict=True)
        }
        ours.add({(a.series, a.column) for a in an.detect(series, settings, last_days=None)}, truth)
        simple.add(mean_sigma(case.values, settings.window_days, 3.0, settings.absolute_margin), truth)
        evaluated += series.values.shape[0] * an.evaluable_days(series, settings)
        clean += series.values.shape[0] * an.evaluable_days(series, settings) - len(truth)
    elapsed = time.perf_counter() - started
    print(
        f"{args.seeds} seeds x {args.series} series, {sum(ours.injected.values())} anomalies, "
        f"{evaluated} evaluated days, default margins (relative {settings.relative_margin}, "
        f"absolute {settings.absolute_margin}, {settings.noise_sigmas} noise scales), {elapsed:.1f} s"
    )
    print(f"{'size':>6} {'injected':>9} {'recall':>7} {'mean+3sd':>9}")
    for size in GRADED_SIZES:
        print(
            f"{size:>5.1f}x {ours.injected[size]:>9} {ours.recall([size]):>7.3f} {simple.recall([size]):>9.3f}"
        )
    large = [s for s in GRADED_SIZES if s >= 1.8]
    print(f"recall from 1.8x: {ours.recall(large):.3f} (mean+3sd: {simple.recall(large):.3f})")
    for name, tally in (("detector", ours), ("mean+3sd", simple)):
        false = tally.flagged - tally.hits
        print(
            f"{name}: precision {tally.precision():.3f} ({tally.hits} of {tally.flagged} flagged days "
            f"injected), clean days flagged {false / max(1, clean):.5f}"
        )


if __name__ == "__main__":
    main()

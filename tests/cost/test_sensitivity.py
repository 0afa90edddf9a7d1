"""The anomaly detector's margins pinned from both sides on noisy series, the shapes a real
billing export has, and the detection curve on graded injected anomalies.

The expectation and noise scale are recomputed here from their definition (same-weekday median
of the trailing window; 1.4826 x the median absolute deviation from the weekday medians), so a
change to the baseline or to any margin moves a case across the line and fails a test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from orchestra.automations.cost import AnomalySettings
from orchestra.automations.cost import analysis as an
from orchestra.automations.cost.generator import graded_anomalies
from orchestra.models import Severity

# The documented defaults (AnomalySettings): the tests below pin these values, not whatever the
# settings model happens to say.
RELATIVE = 0.3
ABSOLUTE = 25.0
SIGMAS = 3.0
WINDOW = 28
FIRST = dt.date(2025, 1, 6)  # a Monday


def test_the_documented_defaults() -> None:
    s = AnomalySettings()
    assert (s.relative_margin, s.absolute_margin, s.noise_sigmas, s.window_days) == (
        RELATIVE,
        ABSOLUTE,
        SIGMAS,
        WINDOW,
    )
    assert s.weekday_aware


def noisy_series(rng: np.random.Generator, days: int, level: float, sigma: float) -> np.ndarray:
    """Daily cost: a weekday/weekend cycle, slow growth and multiplicative lognormal noise."""
    weekday = np.array([(FIRST + dt.timedelta(days=d)).weekday() for d in range(days)])
    cycle = np.where(weekday >= 5, 0.6, 1.0)
    growth = 1.001 ** np.arange(days)
    noise = rng.lognormal(-(sigma**2) / 2, sigma, days)
    return level * cycle * growth * noise


def reference(history: np.ndarray, window: int) -> tuple[float, float]:
    """Expected value and noise scale of the day after ``history``, from their definition."""
    h = history[-window:]
    medians = np.array([np.median(h[j::7]) for j in range(7)])
    residual = np.abs(h - medians[np.arange(window) % 7])
    return float(medians[0]), float(1.4826 * np.median(residual))


def thresholds(expected: float, scale: float, relative: float, absolute: float, sigmas: float) -> dict:
    return {
        "relative": relative * max(expected, 0.0),
        "absolute": absolute,
        "noise": sigmas * scale,
    }


def flagged_last_day(values: np.ndarray, settings: AnomalySettings) -> bool:
    series = an.DailySeries(values=values[None, :], keys=np.zeros((1, 2), np.int64), first_day=0)
    found = an.detect(series, settings, last_days=1)
    return any(a.column == values.size - 1 for a in found)


# (margin that binds, level, daily noise sigma): a volatile large service, a steady large one,
# a steady small one. Each case is checked to be bound by its margin with room to spare.
PROFILES = {
    "noise": (1000.0, 0.35),
    "relative": (1000.0, 0.04),
    "absolute": (40.0, 0.04),
}
KNOBS = {
    "defaults": (RELATIVE, ABSOLUTE, SIGMAS),
    "custom": (0.5, 60.0, 4.0),
}
CUSTOM_LEVELS = {"noise": (1000.0, 0.5), "relative": (1000.0, 0.04), "absolute": (60.0, 0.04)}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("binding", ["noise", "relative", "absolute"])
@pytest.mark.parametrize("knobs", ["defaults", "custom"])
def test_each_margin_pinned_from_both_sides_on_noisy_data(seed: int, binding: str, knobs: str) -> None:
    relative, absolute, sigmas = KNOBS[knobs]
    level, sigma = (PROFILES if knobs == "defaults" else CUSTOM_LEVELS)[binding]
    rng = np.random.Generator(np.random.PCG64([seed, 7]))
    days = WINDOW + 14 + seed  # the evaluated day falls on different weekdays
    values = noisy_series(rng, days, level, sigma)
    expected, scale = reference(values[:-1], WINDOW)
    limits = thresholds(expected, scale, relative, absolute, sigmas)
    line = limits[binding]
    others = max(v for k, v in limits.items() if k != binding)
    # the chosen margin decides this case: the others are well below it
    assert line > 1.25 * others, (binding, limits)
    settings = (
        AnomalySettings()  # the defaults themselves, so that changing one fails here too
        if knobs == "defaults"
        else AnomalySettings(relative_margin=relative, absolute_margin=absolute, noise_sigmas=sigmas)
    )
    above, below = values.copy(), values.copy()
    above[-1] = expected + 1.05 * line
    below[-1] = expected + 0.95 * line
    assert flagged_last_day(above, settings), (binding, limits, above[-1])
    assert not flagged_last_day(below, settings), (binding, limits, below[-1])


@pytest.mark.parametrize("seed", range(4))
def test_the_window_is_the_trailing_window_days(seed: int) -> None:
    # the level doubled three weeks before the evaluated day: a 28-day window still holds one week of
    # the old level (the weekday median is the new level), a 56-day window holds three of eight
    # (median between the two levels, so the day is far above it)
    rng = np.random.Generator(np.random.PCG64([seed, 9]))
    days = 70
    values = noisy_series(rng, days, 400.0, 0.03)
    values[-22:] *= 2.0
    assert not flagged_last_day(values, AnomalySettings(window_days=28))
    assert flagged_last_day(values, AnomalySettings(window_days=56))
    expected, _ = reference(values[:-1], 28)
    series = an.DailySeries(values=values[None, :], keys=np.zeros((1, 2), np.int64), first_day=0)
    base = an.baseline(series.values, 28, True)
    assert base.expected[0, -1] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("delta", "level"),
    [
        (99.99, Severity.low),
        (100.0, Severity.medium),
        (499.99, Severity.medium),
        (500.0, Severity.high),
        (2499.99, Severity.high),
        (2500.0, Severity.critical),
    ],
)
def test_severity_levels_from_both_sides(delta: float, level: Severity) -> None:
    assert an.severity_for(delta, AnomalySettings()) == level


# ----- the shapes of a real billing export -----

SHAPE_DAYS = 98  # 2025-01-06 .. 2025-04-13: three month starts, the last two evaluable


def export_series(seed: int, level: float = 300.0, sigma: float = 0.05) -> np.ndarray:
    return noisy_series(np.random.Generator(np.random.PCG64([seed, 13])), SHAPE_DAYS, level, sigma)


def flagged_dates(
    values: np.ndarray, settings: AnomalySettings | None = None
) -> dict[str, tuple[float, float]]:
    """Flagged day -> (actual, expected) for one series starting on FIRST."""
    series = an.DailySeries(
        values=values[None, :], keys=np.zeros((1, 2), np.int64), first_day=FIRST.toordinal()
    )
    found = an.detect(series, settings or AnomalySettings(), last_days=None)
    return {series.date(a.column).isoformat(): (a.actual, a.expected) for a in found}


def column(date: dt.date) -> int:
    return (date - FIRST).days


SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_new_service_is_reported_on_its_first_day_only(seed: int) -> None:
    values = export_series(seed)
    start = 50
    values[:start] = 0.0
    found = flagged_dates(values)
    first = (FIRST + dt.timedelta(days=start)).isoformat()
    assert list(found) == [first], found  # new spend, judged against nothing
    assert found[first][1] == 0.0
    # a new service under the absolute margin is not worth a finding
    small = export_series(seed, level=20.0)
    small[:start] = 0.0
    assert flagged_dates(small) == {}
    # once its window is full it is judged like any other series: a spike is found
    values[start + 35] *= 3
    assert (FIRST + dt.timedelta(days=start + 35)).isoformat() in flagged_dates(values)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_service_back_after_a_pause_starts_again(seed: int) -> None:
    # back after a whole window without cost: new spend again, reported on its first day only
    values = export_series(seed)
    values[30:62] = 0.0
    assert list(flagged_dates(values)) == [(FIRST + dt.timedelta(days=62)).isoformat()]
    # back after ten days: its first day matches the history, and the days after it, whose
    # same-weekday history still has the pause's zeros, are not judged until a window has passed
    values = export_series(seed)
    values[40:50] = 0.0
    assert flagged_dates(values) == {}
    values[50 + 28] *= 3  # a full window later, a spike is found again
    assert list(flagged_dates(values)) == [(FIRST + dt.timedelta(days=78)).isoformat()]
    # a pause of a few days is not a start: a spike right after it is found
    values = export_series(seed)
    values[40:44] = 0.0
    values[46] *= 3
    assert list(flagged_dates(values)) == [(FIRST + dt.timedelta(days=46)).isoformat()]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_service_ending_is_not_an_anomaly(seed: int) -> None:
    values = export_series(seed)
    values[60:] = 0.0
    assert flagged_dates(values) == {}


def _month_starts() -> list[int]:
    return [d for d in range(SHAPE_DAYS) if (FIRST + dt.timedelta(days=d)).day == 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_monthly_charge_on_the_first_recurs_without_findings(seed: int) -> None:
    values = export_series(seed)
    starts = _month_starts()
    assert [(FIRST + dt.timedelta(days=d)).isoformat() for d in starts] == [
        "2025-02-01",
        "2025-03-01",
        "2025-04-01",
    ]
    for d in starts:
        values[d] += 3000.0  # a commitment, support or licence fee billed on the 1st
    assert flagged_dates(values) == {}
    # a first-of-month charge that grew beyond the margins over last month's is still found
    grown = values.copy()
    grown[starts[2]] += 2000.0
    assert list(flagged_dates(grown)) == ["2025-04-01"]
    # and a charge the previous month's 1st did not have is new: found
    fresh = export_series(seed)
    fresh[starts[2]] += 3000.0
    actual, expected = flagged_dates(fresh)["2025-04-01"]
    assert expected < 400 < 3000 < actual


@pytest.mark.parametrize("seed", SEEDS)
def test_credits_exceeding_cost(seed: int) -> None:
    # net cost below zero all along (a promotion larger than the usage): nothing to report
    values = export_series(seed, level=100.0) - 150.0
    assert values.max() < 0
    assert flagged_dates(values) == {}
    # a refund day, far below zero, neither flagged nor lifting the following days' baseline
    refund = export_series(seed)
    refund[50] -= 2000.0
    refund[57] *= 2.0  # a real anomaly a week later, same weekday as the refund
    assert list(flagged_dates(refund)) == [(FIRST + dt.timedelta(days=57)).isoformat()]


@pytest.mark.parametrize("seed", SEEDS)
def test_credits_that_end_are_a_step_up_reported_until_the_baseline_has_it(seed: int) -> None:
    # credits covered the usage, then ended: the bill really rises, and each day says so until
    # three of the four same weekdays in the window hold the new level
    values = export_series(seed, level=200.0, sigma=0.03)
    end = 60
    values[:end] -= 250.0
    found = flagged_dates(values)
    days = sorted(column(dt.date.fromisoformat(d)) for d in found)
    assert days[0] == end and all(end <= d < end + 21 for d in days), days
    assert len(days) >= 10


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_growth_of_two_percent_a_week_is_not_an_anomaly(seed: int) -> None:
    values = export_series(seed, level=500.0) * 1.02 ** (np.arange(SHAPE_DAYS) / 7)
    assert flagged_dates(values) == {}
    # the same growth with a spike on top: the spike is found, the growth around it is not
    values[80] *= 2.0
    assert list(flagged_dates(values)) == [(FIRST + dt.timedelta(days=80)).isoformat()]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_holiday_dip_is_not_an_anomaly_and_the_return_is_not_either(seed: int) -> None:
    values = export_series(seed)
    holidays = [column(dt.date(2025, 2, 17)), column(dt.date(2025, 2, 18)), column(dt.date(2025, 2, 19))]
    for d in holidays:
        values[d] *= 0.3
    assert flagged_dates(values) == {}


# ----- the detection curve -----


def test_detection_curve_on_graded_anomalies() -> None:
    """Recall >= 0.95 from 1.8x the expected day up, precision >= 0.95 overall."""
    total_hits = total_flagged = 0
    big = big_hits = 0
    for seed in (1, 2, 3):
        case = graded_anomalies(seed, series=60)
        series = an.DailySeries(values=case.values, keys=case.keys, first_day=case.first_day)
        found = {(a.series, a.column) for a in an.detect(series, AnomalySettings(), last_days=None)}
        truth = {
            (int(s), int(c)): float(f) for s, c, f in zip(case.series, case.column, case.factor, strict=True)
        }
        total_flagged += len(found)
        total_hits += len(found & truth.keys())
        for key, factor in truth.items():
            if factor >= 1.8:
                big += 1
                big_hits += key in found
    assert big >= 100
    assert big_hits / big >= 0.95, (big_hits, big)
    assert total_hits / total_flagged >= 0.95, (total_hits, total_flagged)


def test_graded_set_is_deterministic() -> None:
    a, b = graded_anomalies(5, series=10), graded_anomalies(5, series=10)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.factor, b.factor)
    assert not np.array_equal(a.values, graded_anomalies(6, series=10).values)

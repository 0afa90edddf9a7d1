"""CSV metric files: the real series load; every kind of bad file is an InputError naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from orchestra.errors import InputError
from orchestra.inputs import DEFAULT_MAX_BYTES
from orchestra.metrics.base import iso
from orchestra.metrics.files import FileMetricsSource, read_series

from .helpers import CPU_HIGH, REQUESTS, write_csv


def test_real_series_loads_in_order() -> None:
    series = read_series(CPU_HIGH, "cpu")
    assert len(series) == 4032
    assert iso(series.start_ms) == "2014-04-10T00:04:00Z"
    assert iso(series.end_ms) == "2014-04-24T00:09:00Z"
    assert series.values[0] == pytest.approx(91.958)
    assert series.median_interval_seconds() == 300.0
    assert (series.t_ms[1:] > series.t_ms[:-1]).all()


def test_timezones_and_iso_forms(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "m.csv",
        ["2024-01-01T00:00:00Z,1", "2024-01-01 00:05:00,2", "2024-01-01T02:10:00+02:00,3"],
    )
    series = read_series(path, "cpu")
    assert [iso(t) for t in series.t_ms] == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:05:00Z",
        "2024-01-01T00:10:00Z",
    ]


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("", 1, "empty file"),
        ("\n\n", 1, "empty file"),
        ("2014-04-10 00:04:00,91.9\n", 1, "missing header"),
        ("time,val\n2014-04-10 00:04:00,91.9\n", 1, "missing header"),
        ("timestamp,value\n", 2, "no samples"),
        (
            "timestamp,value\n2014-04-10 00:04:00,91.9\n2014-04-10 00:09:00,abc\n",
            3,
            "non-numeric value 'abc'",
        ),
        ("timestamp,value\n2014-04-10 00:04:00,\n", 2, "non-numeric value"),
        ("timestamp,value\n2014-04-10 00:04:00,nan\n", 2, "not a finite number"),
        ("timestamp,value\n2014-04-10 00:09:00,1\n2014-04-10 00:04:00,2\n", 3, "out-of-order timestamp"),
        ("timestamp,value\n2014-04-10 00:04:00,1\n2014-04-10 00:04:00,2\n", 3, "duplicate timestamp"),
        ("timestamp,value\nyesterday,1\n", 2, "bad timestamp 'yesterday'"),
        ("timestamp,value\n2014-04-10 00:04:00,1,2\n", 2, "expected 2 fields"),
        ("timestamp,value\n2014-04-10 00:04:00,120\n", 2, "out of range"),
        ("timestamp,value\n2014-04-10 00:04:00,-1\n", 2, "out of range"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_series(path, "cpu")
    assert info.value.where == f"{path}:{line}"
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_duplicate_message_points_at_previous_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv", ["2014-04-10 00:04:00,1", "2014-04-10 00:09:00,1", "2014-04-10 00:09:00,2"]
    )
    with pytest.raises(InputError, match="previous sample on line 3") as info:
        read_series(path, "cpu")
    assert info.value.where == f"{path}:4"


def test_missing_file_and_unknown_metric(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_series(tmp_path / "nope.csv", "cpu")
    with pytest.raises(InputError, match="unknown metric 'disk'"):
        FileMetricsSource({"disk": str(REQUESTS)})


def test_request_counts_are_not_percent_limited() -> None:
    series = read_series(REQUESTS, "request_count")
    assert series.values.max() == 656.0


def test_file_source_fetches_only_given_metrics() -> None:
    source = FileMetricsSource({"cpu": str(CPU_HIGH)})
    data = source.fetch("svc", ["cpu", "memory"])
    assert list(data) == ["cpu"]
    assert source.spec() == {
        "type": "files",
        "paths": {"cpu": str(CPU_HIGH)},
        "label": None,
        "max_bytes": DEFAULT_MAX_BYTES,
    }

"""The block reader of CSV metric files: plain rows are read a block at a time with numpy, every
other form line by line. Both must give the same samples and the same first error."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pytest
from orchestra.errors import InputError
from orchestra.inputs import open_input, text_blocks, text_lines
from orchestra.metrics import files
from orchestra.metrics.files import _Reading, read_series

PLAIN = ["2024-02-28 23:59:00,1.5", "2024-02-29T00:00:00,2", "2024-02-29 00:01:00Z,99.75"]


def line_by_line(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every row through the line-by-line reader."""
    where = str(path)
    reading = _Reading(name, where)
    with open_input(path, where=where) as reader:
        lines = text_lines(reader, where)
        for _, line in lines:
            if line.strip():
                break
        reading.lines(lines)
    series = reading.series()
    return series.t_ms, series.values


def outcome(read: object) -> tuple[str, object]:
    try:
        t_ms, values = read()  # type: ignore[operator]
    except InputError as exc:
        return "error", str(exc)
    return "ok", (t_ms.tolist(), values.tolist())


def test_plain_rows_skip_the_line_by_line_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,value\n" + "\n".join(PLAIN) + "\n")

    def refuse(text: str) -> int:
        raise AssertionError(f"parsed row by row: {text}")

    monkeypatch.setattr(files, "_parse_time", refuse)
    series = read_series(path, "cpu")
    expected = [
        dt.datetime(2024, 2, 28, 23, 59, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 0, 1, tzinfo=dt.UTC),
    ]
    assert series.t_ms.tolist() == [int(d.timestamp() * 1000) for d in expected]
    assert series.values.tolist() == [1.5, 2.0, 99.75]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("2023-02-29 00:00:00,1", "bad timestamp '2023-02-29 00:00:00'"),
        ("2024-04-31 00:00:00,1", "bad timestamp"),
        ("2024-13-01 00:00:00,1", "bad timestamp"),
        ("2024-01-01 24:00:00,1", "bad timestamp"),
        ("2024-01-01 23:60:00,1", "bad timestamp"),
        ("2024-01-01 23:59:60,1", "bad timestamp"),
        ("0000-12-31 23:59:59,1", "bad timestamp"),
        ("2024-01-01 00:00:00z,1", "bad timestamp"),
        ("2024-01-01 00:00:00,1e400", "not a finite number"),
        ("2024-01-01 00:00:00,100.0000001", "out of range"),
        ("2024-01-01 00:00:00,-0.5", "out of range"),
        ("2024-01-01 00:00:00,1,", "expected 2 fields"),
    ],
)
def test_a_bad_row_among_plain_ones_is_named_by_line(tmp_path: Path, row: str, fragment: str) -> None:
    # In time order after the rows before it: only the bad part itself can refuse it.
    rows = [f"0001-01-01 00:{m:02d}:00,{m}" for m in range(50)] + [row]
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as info:
        read_series(path, "cpu", chunk_bytes=4096)
    assert info.value.where == f"{path}:52"
    assert fragment in str(info.value)


def test_order_is_checked_across_blocks(tmp_path: Path) -> None:
    rows = [f"2020-01-01 00:{m:02d}:00,1" for m in range(40)] + ["2020-01-01 00:10:00,1"]
    path = tmp_path / "late.csv"
    path.write_text("timestamp,value\n" + "\n".join(rows))
    with pytest.raises(InputError, match=r"out-of-order timestamp .* \(previous sample on line 41\)") as info:
        read_series(path, "cpu", chunk_bytes=128)
    assert info.value.where == f"{path}:42"


def random_row(rng: random.Random, when: dt.datetime) -> str:
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    value = rng.choice(["1", "99.5", "0", "100", "42.125", "7.000000000000001", "1e1", " 3 ", "5_0"])
    form = rng.random()
    if form < 0.6:
        pass
    elif form < 0.7:
        stamp = stamp.replace(" ", "T") + rng.choice(["", "Z"])
    elif form < 0.75:
        stamp = (when + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    elif form < 0.8:
        stamp = f" {stamp}.250 "
    elif form < 0.84:
        return rng.choice(["", "   ", "\r"])
    elif form < 0.88:
        value = rng.choice(["nan", "-1", "101", "x", "", "inf"])
    elif form < 0.92:
        stamp = rng.choice(["2021-02-29 00:00:00", "2021-01-01 25:00:00", "yesterday", stamp[:-1]])
    elif form < 0.95:
        stamp = (when - dt.timedelta(minutes=rng.choice([1, 10]))).strftime("%Y-%m-%d %H:%M:%S")
    elif form < 0.97:
        return f"{stamp},{value},extra"
    else:
        value += "\r"
    return f"{stamp},{value}"


@pytest.mark.parametrize("seed", range(40))
def test_blocks_read_as_the_line_by_line_reader_does(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    when = dt.datetime(2020, 2, 28, 23, 50)
    rows = []
    bad_rate = rng.choice([0.0, 0.002, 0.02])
    for _ in range(rng.randint(1, 400)):
        when += dt.timedelta(minutes=rng.choice([1, 1, 1, 5]))
        row = random_row(rng, when) if rng.random() < bad_rate * 10 or rng.random() < 0.05 else None
        rows.append(row if row is not None else f"{when:%Y-%m-%d %H:%M:%S},{rng.uniform(0, 100)!r}")
    path = tmp_path / "m.csv"
    path.write_text("timestamp,value\n" + "\n".join(rows) + rng.choice(["", "\n", "\n\n"]))
    chunk = rng.choice([64, 300, 4096, 1 << 20])
    ours = outcome(lambda: (lambda s: (s.t_ms, s.values))(read_series(path, "cpu", chunk_bytes=chunk)))
    assert ours == outcome(lambda: line_by_line(path, "cpu"))


def test_year_zero_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zero.csv"
    path.write_text("timestamp,value\n0000-12-31 23:59:59,1\n0001-01-01 00:00:00,1\n")
    with pytest.raises(InputError, match="bad timestamp") as info:
        read_series(path, "cpu")
    assert info.value.where == f"{path}:2"


class Chunks:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int) -> bytes:
        part = self.data[self.offset : self.offset + size]
        self.offset += len(part)
        return part


def test_lines_before_a_too_long_one_come_first() -> None:
    got = []
    data = b"ok\r\nfine\n" + b"x" * 50 + b"\nafter\n"
    with pytest.raises(InputError, match="line longer than 20 characters") as info:
        for item in text_lines(Chunks(data), "f.csv", chunk_bytes=1000, max_line_chars=20):
            got.append(item)
    assert got == [(1, "ok"), (2, "fine")]
    assert info.value.where == "f.csv:3"


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
def test_blocks_hold_whole_lines_numbered_from_their_first(chunk: int) -> None:
    data = "\ufeffa,1\r\nbé,2\n\nlast".encode()
    blocks = list(text_blocks(Chunks(data), "f.csv", chunk_bytes=chunk))
    assert "".join(text for _, text in blocks) == "a,1\r\nbé,2\n\nlast"
    for _, text in blocks[:-1]:
        assert text.endswith("\n")
    lines = [(first + i, line) for first, text in blocks for i, line in enumerate(text.splitlines())]
    assert lines == [(1, "a,1"), (2, "bé,2"), (3, ""), (4, "last")]

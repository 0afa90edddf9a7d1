"""The DuckDB engine of local billing files against the pure readers, on seeded random files.

Plain files must be read by the engine (not handed back) with the same rows, values, names and
currency as the pure readers, bit for bit; files with any malformed row, odd layout or JSON that
DuckDB accepts and the pure reader does not must give exactly the pure readers' outcome (the
engine hands them back), errors included.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from orchestra.automations.cost import local_engine
from orchestra.automations.cost.billing import read_billing_file
from orchestra.errors import InputError

from .test_billing_blocks import HEADER, PROJECTS, SERVICES, SKUS, csv_row, json_record, spoil_csv
from .test_billing_blocks import outcome as read_outcome

pytest.importorskip("duckdb")


def outcome(path: Path, *, engine: str, blocks: bool = True, max_bytes: int | None = None) -> dict[str, Any]:
    """Everything a read by ``engine`` gives (see :func:`.test_billing_blocks.outcome`)."""
    limits = {} if max_bytes is None else {"max_bytes": max_bytes}
    return read_outcome(path, engine=engine, blocks=blocks, **limits)


def engine_reads(path: Path) -> bool:
    return local_engine.read_with_duckdb(path, source=str(path), max_bytes=1 << 30) is not None


def assert_alike(path: Path) -> dict[str, Any]:
    """The engine's outcome is the pure readers' (in blocks and row by row)."""
    pure = outcome(path, engine="pure")
    assert outcome(path, engine="duckdb") == pure
    assert outcome(path, engine="pure", blocks=False) == pure
    return pure


def clean_credit(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(["[]", ""])
    if roll < 0.9:
        amounts = [round(-rng.random() * 5, rng.randint(0, 12)) for _ in range(rng.choice([1, 1, 2, 3]))]
        return json.dumps([{"name": "SUD", "amount": a, "type": "X"} for a in amounts])
    # Accepted by the pure reader in other shapes: a bare number, int amounts, -0.0, text amounts.
    return rng.choice(["-1.5", "[-1, -2]", '[{"amount": -1}]', '[{"amount": "-2.5"}]', '[{"amount": -0.0}]'])


def clean_csv_row(rng: random.Random) -> list[str]:
    row = csv_row(rng)
    row[7] = rng.choice(
        [
            f"{rng.uniform(0, 20):.{rng.randint(0, 17)}f}",
            f"{rng.uniform(0, 1e6):.25g}",
            repr(rng.uniform(-1, 1)),
            rng.choice(["0", "-0", "-0.0", "1e-7", "2E+3", ".5", "5.", "+1.25", "123456789012345678901234"]),
        ]
    )
    row[9] = clean_credit(rng)
    return row


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("seed", range(12))
def test_plain_csv_is_read_by_the_engine_alike(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "billing.csv"
    path.write_text(csv_text([clean_csv_row(rng) for _ in range(rng.randint(1, 400))]), encoding="utf-8")
    assert engine_reads(path)
    data = assert_alike(path)
    assert data["bad"]["count"] == 0


def test_csv_without_optional_columns_and_with_flat_names(tmp_path: Path) -> None:
    rng = random.Random(5)
    header = ["service_description", "usage_start_time", " project_id ", "cost"]
    rows = [
        [rng.choice(SERVICES), "2025-01-03T04:00:00Z", rng.choice(PROJECTS), str(rng.random())]
        for _ in range(50)
    ]
    path = tmp_path / "billing.csv"
    path.write_text(csv_text(rows, header))
    assert engine_reads(path)
    assert assert_alike(path)["sku"] == ["(no sku)"] * 50


CSV_SPOILERS = [
    lambda line: " " + line,  # a leading blank before the first field
    lambda line: line.replace(",", ' ,"x"y', 1),  # text after a closing quote
    lambda line: line.replace(",", ',a""b', 1),  # doubled quotes in an unquoted field
    lambda line: line.replace(",", "," + "x" * 140_000, 1),  # a field over the csv module's limit
    lambda line: line + "\n",  # a blank line after it
    lambda line: line.replace(",", ",\t", 1),
    lambda line: line + ",",  # one field too many
    lambda line: line.replace("USD", "EUR"),
    lambda line: line.replace("UTC", "+25:00"),
]


@pytest.mark.parametrize("seed", range(40))
def test_spoiled_csv_reads_as_the_pure_reader(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    lines = [csv_text([clean_csv_row(rng) for _ in range(rng.randint(1, 200))]).removesuffix("\n")]
    for _ in range(rng.randint(1, 3)):
        spoiled = spoil_csv(rng, clean_csv_row(rng))
        if rng.random() < 0.5:
            spoiled = rng.choice(CSV_SPOILERS)(spoiled)
        lines.insert(rng.randint(1, len(lines)), spoiled)
    path = tmp_path / "billing.csv"
    text = "\n".join(lines) + "\n"
    if seed % 10 == 3:
        text = "\ufeff" + text
    if seed % 10 == 4:
        text = text.replace("\n", "\r\n")
    path.write_text(text, encoding="utf-8", newline="")
    assert_alike(path)


def clean_record(rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {
        "billing_account_id": "01A2B3",
        "service": {"description": rng.choice(SERVICES)},
        "sku": {"description": rng.choice(SKUS), "id": "AB-CD"},
        "usage_start_time": f"2025-01-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00 UTC",
        "project": {"id": rng.choice(PROJECTS), "name": "x"},
        "labels": [{"key": "env", "value": rng.choice(["prod", "dev"])}],
        "cost": rng.choice([round(rng.uniform(0, 20), rng.randint(0, 17)), rng.randint(0, 9), -0.0, 1e-7]),
        "currency": "USD",
        "credits": json.loads(clean_credit(rng) or "[]"),
    }
    roll = rng.random()
    if roll < 0.1:
        del record["credits"]
    elif roll < 0.2:
        del record["sku"]
    elif roll < 0.25:
        record["sku"] = None
    elif roll < 0.3:
        record["currency"] = None
    return record


def json_text(records: list[dict[str, Any]], rng: random.Random) -> str:
    separators = (",", ":") if rng.random() < 0.5 else (", ", ": ")
    ascii_only = rng.random() < 0.5
    return "".join(json.dumps(r, separators=separators, ensure_ascii=ascii_only) + "\n" for r in records)


@pytest.mark.parametrize("seed", range(12))
def test_plain_json_lines_are_read_by_the_engine_alike(tmp_path: Path, seed: int) -> None:
    rng = random.Random(500 + seed)
    path = tmp_path / "billing.jsonl"
    path.write_text(json_text([clean_record(rng) for _ in range(rng.randint(1, 300))], rng), encoding="utf-8")
    assert engine_reads(path)
    data = assert_alike(path)
    assert data["bad"]["count"] == 0


JSON_SPOILERS = [
    lambda text: text.replace('"labels":', '"labels": [1,],"x":', 1),  # a trailing comma
    lambda text: text.replace('"labels":', '"labels": {"a": 1 },"y": [2 ],"x":', 1),
    lambda text: text.replace('"labels":', '"labels": nan,"x":', 1),
    lambda text: text.replace('"labels":', '"labels":-inf,"x":', 1),
    lambda text: text.replace('"labels":', '"labels": INFINITY,"x":', 1),
    lambda text: text.replace('"labels":', '"labels": NaN,"x":', 1),  # valid for both
    lambda text: text.replace('"labels":', '"labels": "no nan, inf here","x":', 1),
    lambda text: text.replace("{", '{"service.description": null,', 1),
    lambda text: text.replace("{", '{"project.id": null,', 1),
    lambda text: text.replace("{", '{"sku\\u002edescription": "escaped",', 1),
    lambda text: text.replace("{", '{"total_credits": -5,', 1),
    lambda text: text.replace("{", '{"sku_description": null,', 1),
    lambda text: text.replace('"service":', '"service": {"description": "first"}, "service":', 1),
    lambda text: text.replace('{"description":', '{"description": "first", "description":', 1),
    lambda text: text.replace('"cost":', '"cost": "1.5", "old_cost":', 1),
    lambda text: text.replace('"cost":', '"cost": 123456789012345678901234567890, "old_cost":', 1),
    lambda text: text.replace('"cost":', '"cost": 1e400, "old_cost":', 1),
    lambda text: text.replace('"usage_start_time":', '"usage_start_time": 20250101, "old":', 1),
    lambda text: text.replace("{", '{"deep": ' + "[" * 1200 + "]" * 1200 + ",", 1),
    lambda text: "   ",
    lambda text: "",
    lambda text: "[1]",
    lambda text: text.replace('"credits":', '"credits": [{"amount": -1, "amount": -2}], "old":', 1),
    lambda text: text.replace('"credits":', '"credits": "-2.5", "old":', 1),
]


@pytest.mark.parametrize("seed", range(48))
def test_spoiled_json_lines_read_as_the_pure_reader(tmp_path: Path, seed: int) -> None:
    rng = random.Random(900 + seed)
    records = [clean_record(rng) for _ in range(rng.randint(1, 150))]
    lines = json_text(records, rng).splitlines()
    for _ in range(rng.randint(1, 2)):
        at = rng.randrange(len(lines))
        if rng.random() < 0.3:
            lines.insert(at, json_record(rng))
        else:
            lines[at] = JSON_SPOILERS[(seed + at) % len(JSON_SPOILERS)](lines[at])
    path = tmp_path / "billing.jsonl"
    path.write_text("\n".join(lines) + ("\n" if seed % 3 else ""), encoding="utf-8")
    assert_alike(path)


@pytest.mark.parametrize("spoiler", range(len(JSON_SPOILERS)))
def test_each_json_spoiler_reads_as_the_pure_reader(tmp_path: Path, spoiler: int) -> None:
    rng = random.Random(spoiler)
    lines = json_text([clean_record(rng) for _ in range(30)], rng).splitlines()
    lines[7] = JSON_SPOILERS[spoiler](lines[7])
    path = tmp_path / "billing.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_alike(path)


def test_json_that_duckdb_alone_accepts_is_handed_back(tmp_path: Path) -> None:
    rng = random.Random(1)
    # A trailing comma, nan and inf spelt otherwise: the pure reader names the line. A blank before
    # a closing bracket is valid JSON, handed back all the same (not told apart from a comma's).
    for spoiler, bad in zip(JSON_SPOILERS[:5], [1, 0, 1, 1, 1], strict=True):
        lines = json_text([clean_record(rng) for _ in range(10)], rng).splitlines()
        lines[3] = spoiler(lines[3])
        path = tmp_path / "billing.jsonl"
        path.write_text("\n".join(lines) + "\n")
        assert not engine_reads(path)
        assert assert_alike(path)["bad"]["count"] == bad


def test_bounds_come_before_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "billing.csv"
    path.write_text(csv_text([clean_csv_row(random.Random(i)) for i in range(100)]))
    size = path.stat().st_size
    assert outcome(path, engine="duckdb", max_bytes=size) == outcome(path, engine="pure", max_bytes=size)
    too_big = outcome(path, engine="duckdb", max_bytes=size - 1)
    assert too_big == outcome(path, engine="pure", max_bytes=size - 1)
    assert "inputs.max_bytes" in too_big["error"]
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in outcome(fifo, engine="duckdb")["error"]
    assert "is a directory" in outcome(tmp_path, engine="duckdb")["error"]
    assert "file not found" in outcome(tmp_path / "nope.csv", engine="duckdb")["error"]
    packed = tmp_path / "billing.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert not engine_reads(packed)  # compressed: the pure reader's
    assert outcome(packed, engine="duckdb") == outcome(path, engine="pure")


def test_errors_are_the_pure_readers(tmp_path: Path) -> None:
    cases = {
        "latin.csv": ",".join(HEADER).encode() + b"\nx,Caf\xe9,a,2025-01-01,,p,,1,USD,\n",
        "nul.csv": ",".join(HEADER).encode() + b"\nx,\x00,a,2025-01-01,,p,,1,USD,\n",
        "nocost.csv": b"service.description,usage_start_time,project.id\nA,2025-01-01,p\n",
        "header.csv": ",".join(HEADER).encode() + b"\n",
        "bad.jsonl": b'{"service": {"description": "A"}, "cost": 1}\n' * 3,
        "currencies.csv": csv_text(
            [[*clean_csv_row(random.Random(i))[:8], c, "[]"] for i, c in enumerate(["USD", "EUR"])]
        ).encode(),
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = assert_alike(path)
        assert "error" in result, name


def test_engine_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "billing.csv"
    path.write_text(csv_text([clean_csv_row(random.Random(i)) for i in range(20)]))
    asked: list[int] = []
    original = local_engine.read_with_duckdb

    def recording(*args: Any, min_bytes: int = 0, **kwargs: Any) -> Any:
        asked.append(min_bytes)
        return original(*args, min_bytes=min_bytes, **kwargs)

    monkeypatch.setattr(local_engine, "read_with_duckdb", recording)
    monkeypatch.setenv(local_engine.ENGINE_ENV, "pure")
    read_billing_file(path, max_bad_share=0)
    assert asked == []
    monkeypatch.setenv(local_engine.ENGINE_ENV, "auto")
    read_billing_file(path, max_bad_share=0)
    assert asked == [local_engine.ENGINE_MIN_BYTES]  # a small file: the pure reader is faster
    monkeypatch.delenv(local_engine.ENGINE_ENV)
    read_billing_file(path, max_bad_share=0, engine="duckdb")
    assert asked[-1] == 0
    read_billing_file(path, max_bad_share=0, blocks=False, engine="duckdb")
    assert len(asked) == 2  # the row-by-row reference never uses the engine
    monkeypatch.setenv(local_engine.ENGINE_ENV, "fast\x1b")
    with pytest.raises(InputError) as caught:
        read_billing_file(path, max_bad_share=0)
    assert str(caught.value) == (
        f"{local_engine.ENGINE_ENV}: 'fast\\x1b' is not a billing file engine; expected one of auto, pure, duckdb"
    )


def test_forcing_an_engine_that_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_engine, "duckdb_installed", lambda: False)
    with pytest.raises(InputError, match="DuckDB is not installed"):
        local_engine.chosen_engine("duckdb")
    assert local_engine.chosen_engine("auto") == "auto"


CREDIT_SHAPES = [
    '[{"name": "SUD", "amount": -0.958906, "type": "SUSTAINED_USAGE_DISCOUNT"}]',
    '[{"name":"SUD","amount":-1.25}]',
    '[{"amount": -2}]',
    '[{"amount": -0.0}]',
    '[{"amount": -1.5e-3, "id": 7}]',
    '[ { "amount" : -3.25 } ]',
    '[{"name": "a \\" quote", "amount": -1.0}]',
    '[{"name": "amount", "amount": -1.0}]',
    '[{"amount": -1.0, "amount": -2.0}]',
    '[{"name": "SUD", "amount": -0.1}, {"name": "CUD", "amount": -0.2}]',
    '[{"name": "Café", "amount": -0.3333333333333333}]',
    '[{"amount": -12345678901234567890123}]',
    '[{"amount": -0.1000000000000000055511151231257827}]',
    ' [{"amount": -1.0}]',
    "-4.5",
    "[-1, -2.5]",
    '[{"amount": "-2.5"}]',
]


def test_credit_shapes_read_alike(tmp_path: Path) -> None:
    rng = random.Random(2)
    rows = []
    for i in range(len(CREDIT_SHAPES) * 5):
        row = clean_csv_row(rng)
        row[9] = CREDIT_SHAPES[i % len(CREDIT_SHAPES)]
        rows.append(row)
    path = tmp_path / "billing.csv"
    path.write_text(csv_text(rows))
    assert engine_reads(path)
    data = assert_alike(path)
    assert data["bad"]["count"] == 0
    assert data["credits"][: len(CREDIT_SHAPES)][:3] == [-0.958906, -1.25, -2.0]


@pytest.mark.parametrize(
    "credit",
    [
        '[{"amount": -1.0,}]',
        '[{"amount": NaN}]',
        '[{"amount": nan}]',
        '[{"amount": 1e400}]',
        '[{"amount": 01}]',
        '[{"amount": -1.}]',
        '[{"name": "tab\there", "amount": -1.0}]',
        '[{"amount": true}]',
        '[{"amount": -1.0}',
    ],
)
def test_bad_credits_read_as_the_pure_reader(tmp_path: Path, credit: str) -> None:
    rng = random.Random(3)
    rows = [clean_csv_row(rng) for _ in range(20)]
    rows[5][9] = credit
    path = tmp_path / "billing.csv"
    path.write_text(csv_text(rows))
    assert not engine_reads(path)
    assert assert_alike(path)["bad"]["count"] == 1


def test_text_checks_across_read_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_engine, "CHECK_BYTES", 7)  # multi-byte characters split between reads
    rng = random.Random(4)
    rows = [clean_csv_row(rng) for _ in range(30)]
    for row in rows:
        row[1] = "Café ünïcode 🚀"
    path = tmp_path / "billing.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    assert engine_reads(path)
    assert assert_alike(path)["service"] == ["Café ünïcode 🚀"] * 30
    broken = path.read_bytes().replace("🚀".encode(), "🚀".encode()[:3], 1)
    path.write_bytes(broken)
    assert not engine_reads(path)
    assert "not UTF-8" in assert_alike(path)["error"]

"""The block readers of billing files against the row-by-row readers, on seeded random files.

Each file is read twice: in blocks (plain blocks parsed in bulk, the others row by row) and row
by row only. Both must give the same rows, values, bad rows (lines and reasons) and errors.
Blocks are made small so that one file mixes both kinds of blocks.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from orchestra.automations.cost import blocks
from orchestra.automations.cost.billing import credit_sums, read_billing_file
from orchestra.errors import InputError

HEADER = [
    "billing_account_id",
    "service.description",
    "sku.description",
    "usage_start_time",
    "usage_end_time",
    "project.id",
    "labels",
    "cost",
    "currency",
    "credits",
]
SERVICES = ["Compute Engine", "Cloud Storage", "BigQuery", 'Say "hi", Inc', "Café ünïcode", "Run 🚀"]
SKUS = ["N2 Core", "Standard Storage, US", "Analysis", ""]
PROJECTS = ["shop-prod", "shop-dev", "data", ""]
STAMPS = [
    "2025-01-{d:02d} {h:02d}:00:00 UTC",
    "2025-01-{d:02d}T{h:02d}:00:00Z",
    "2025-01-{d:02d}T{h:02d}:30:00+05:00",
    "2025-01-{d:02d}",
]


def outcome(path: Path, **read: Any) -> dict[str, Any]:
    """Everything a read with ``read`` (read_billing_file's options) gives, with codes decoded
    (code order may differ between readers) and the signs of costs and credits, so that they
    compare bit for bit (-0.0 and 0.0 too)."""
    try:
        data = read_billing_file(path, max_bad_share=0.9, **read)
    except InputError as exc:
        return {"error": str(exc)}
    return {
        "rows": data.rows,
        "bad": data.bad.as_dict(),
        "currency": data.currency,
        "day": data.day.tolist(),
        "cost": data.cost.tolist(),
        "cost_sign": np.signbit(data.cost).tolist(),
        "credits": data.credits.tolist(),
        "credits_sign": np.signbit(data.credits).tolist(),
        "project": [data.project_names[i] for i in data.project],
        "service": [data.service_names[i] for i in data.service],
        "sku": [data.sku_names[i] for i in data.sku],
    }


def assert_same(path: Path) -> dict[str, Any]:
    fast = outcome(path, blocks=True)
    assert fast == outcome(path, blocks=False)
    return fast


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 700)


def credit_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return "[]"
    if roll < 0.5:
        return ""
    if roll < 0.85:
        count = rng.choice([1, 1, 1, 2, 3])
        return json.dumps(
            [{"name": "SUD", "amount": round(-rng.random() * 5, rng.randint(0, 8))} for _ in range(count)]
        )
    return rng.choice(
        [
            "-1.5",
            "[-1, -2]",
            '[{"amount": -1}]',
            '[{"amount": "-2.5"}]',
            '[{"amount": true}]',
            '[{"name": "x"}]',
            '[{"amount": NaN}]',
            '[{"amount": 1e400}]',
            "{not json",
            '[{"amount": -0.0}]',
            '[{"amount": -1.0, "amount": -2.0}]',
            '[{"amount": 1e308}, {"amount": 1e308}]',
        ]
    )


def csv_row(rng: random.Random) -> list[str]:
    day, hour = rng.randint(1, 28), rng.randint(0, 23)
    row = [
        "01A2B3",
        rng.choice(SERVICES[:3]) if rng.random() < 0.8 else rng.choice(SERVICES),
        rng.choice(SKUS),
        STAMPS[0 if rng.random() < 0.8 else rng.randrange(len(STAMPS))].format(d=day, h=hour),
        "",
        rng.choice(PROJECTS[:2]) if rng.random() < 0.9 else rng.choice(PROJECTS),
        rng.choice(["[]", '[{"key": "env", "value": "prod"}]', "a,b"]),
        f"{rng.uniform(0, 20):.{rng.randint(0, 9)}f}",
        "USD",
        credit_text(rng),
    ]
    return row


def spoil_csv(rng: random.Random, row: list[str]) -> str:
    """One CSV line (or more), mostly well formed."""
    roll = rng.random()
    if roll < 0.03:
        row[7] = rng.choice(["abc", "", "1_000", " 2", "+1.5", ".5", "5.", "1e3", "inf", "nan", "-0", "１"])
    elif roll < 0.05:
        row[3] = rng.choice(["yesterday", "", "2025-02-30 00:00:00 UTC", "2025-13-01"])
    elif roll < 0.06:
        row[1] = rng.choice(["", "  ", "bell\x07", "\u202eevil"])
    elif roll < 0.07:
        row[2] = "line\nbreak"  # a quoted field across two lines
    elif roll < 0.08:
        row = row[: rng.randint(1, 9)]
    elif roll < 0.09:
        return ""  # a blank line
    elif roll < 0.10:
        row = [*row, "extra"]
    elif roll < 0.11:
        row[8] = rng.choice(["EUR", ""])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(row)
    line = text.getvalue().removesuffix("\n")
    if rng.random() < 0.01:
        line = line.replace(",", ',x"y', 1)  # a quote inside an unquoted field
    if rng.random() < 0.01:
        line = line.replace('""', '"', 1)  # a lone quote inside a quoted field
    return line


@pytest.mark.parametrize("seed", range(40))
def test_csv_blocks_read_as_row_by_row(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = [",".join(HEADER)]
    for _ in range(rng.randint(1, 300)):
        lines.append(spoil_csv(rng, csv_row(rng)))
    ending = "\r\n" if seed % 5 == 0 else "\n"
    text = ending.join(lines) + (ending if seed % 7 else "")
    path = tmp_path / "billing.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert_same(path)


def test_plain_csv_is_read_in_blocks_with_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    lines = [",".join(HEADER)]
    for _ in range(200):
        text = io.StringIO()
        row = csv_row(rng)
        row[9] = rng.choice(["[]", json.dumps([{"name": "SUD", "amount": -rng.random()}])])
        csv.writer(text, lineterminator="").writerow(row)
        lines.append(text.getvalue())
    path = tmp_path / "billing.csv"
    path.write_text("\n".join(lines) + "\n")
    called: list[int] = []
    original = blocks.csv_block

    def counting(text: str, width: int) -> blocks.CsvBlock | None:
        parsed = original(text, width)
        called.append(parsed is not None)
        return parsed

    monkeypatch.setattr("orchestra.automations.cost.billing.csv_block", counting)
    data = assert_same(path)
    assert data["rows"] == 200 and data["bad"]["count"] == 0
    assert called.count(True) == len(called) > 10  # every block parsed in bulk


def test_bare_carriage_return_fails_alike(tmp_path: Path) -> None:
    path = tmp_path / "billing.csv"
    rows = [",".join(csv_row(random.Random(i))[:9]) + ",[]" for i in range(40)]
    rows[25] = rows[25].replace(",", "\r,", 1)
    path.write_text(",".join(HEADER) + "\n" + "\n".join(rows) + "\n")
    result = assert_same(path)
    assert result["error"].startswith(f"{path}:27: carriage return inside an unquoted field")


def json_record(rng: random.Random) -> str:
    day, hour = rng.randint(1, 28), rng.randint(0, 23)
    credits: Any = credit_text(rng) if rng.random() < 0.9 else None
    try:
        credits = json.loads(credits or "[]") if credits is not None else None
    except ValueError:
        pass  # kept as text
    record: dict[str, Any] = {
        "service": {"description": rng.choice(SERVICES)},
        "sku": {"description": rng.choice(SKUS)},
        "usage_start_time": STAMPS[0 if rng.random() < 0.8 else rng.randrange(len(STAMPS))].format(
            d=day, h=hour
        ),
        "project": {"id": rng.choice(PROJECTS)},
        "labels": [{"key": "env", "value": "prod"}],
        "cost": round(rng.uniform(0, 20), rng.randint(0, 9)),
        "currency": "USD",
    }
    if credits is not None:
        record["credits"] = credits
    roll = rng.random()
    if roll < 0.02:
        record["service"] = rng.choice(["Flat", {"name": "x"}, None, 3])
    elif roll < 0.04:
        record["project_id"] = "flat"
        del record["project"]
    elif roll < 0.05:
        del record["usage_start_time"]
    elif roll < 0.06:
        record["cost"] = rng.choice(["1.5", None, True, 10**30, "x"])
    elif roll < 0.07:
        record["service.description"] = "Literal"
    elif roll < 0.08:
        record["project"] = {"id": "p", "name": "n"}
        record["project.id"] = "dotted"
    text = json.dumps(record, ensure_ascii=rng.random() < 0.5)
    roll = rng.random()
    if roll < 0.01:
        return text[:-1]  # invalid JSON
    if roll < 0.02:
        return ""
    if roll < 0.03:
        return rng.choice(["[1, 2]", '"text"', "null", '{"cost": NaN}', '{"a": "\\ud800"}', "   "])
    if roll < 0.04:
        return text.replace('"cost"', '"cost": 1, "cost"', 1)  # a duplicate key
    if roll < 0.045:
        return '{"deep": ' + "[" * 450 + "]" * 450 + "," + text[1:]
    return text


@pytest.mark.parametrize("seed", range(40))
def test_json_lines_blocks_read_as_row_by_row(tmp_path: Path, seed: int) -> None:
    rng = random.Random(1000 + seed)
    lines = [json_record(rng) for _ in range(rng.randint(1, 200))]
    ending = "\r\n" if seed % 5 == 0 else "\n"
    path = tmp_path / "billing.jsonl"
    path.write_text(ending.join(lines) + (ending if seed % 3 else ""), encoding="utf-8", newline="")
    assert_same(path)


def test_json_lines_of_one_flattened_layout_read_alike(tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = []
    for _ in range(100):
        lines.append(
            json.dumps(
                {
                    "service_description": rng.choice(SERVICES),
                    "usage_start_time": "2025-01-02T03:00:00Z",
                    "project": rng.choice(["a", "b"]),
                    "cost": rng.random(),
                    "credits": -rng.random(),
                }
            )
        )
    path = tmp_path / "billing.jsonl"
    path.write_text("\n".join(lines) + "\n")
    data = assert_same(path)
    assert data["rows"] == 100 and data["bad"]["count"] == 0


def test_credit_sums_match_the_row_sum() -> None:
    rng = random.Random(11)
    values = [[{"amount": rng.uniform(-3, 0)} for _ in range(rng.randint(0, 4))] for _ in range(500)]
    sums = credit_sums(values)
    assert sums is not None
    assert sums.tolist() == [sum(item["amount"] for item in value) + 0.0 for value in values]
    assert credit_sums([[{"amount": -1}]]) is None  # an int amount: read row by row
    assert credit_sums([[{"amount": 1e308}, {"amount": 1e308}]]) is None
    assert credit_sums([[{"amount": -0.0}]]).tolist() == [0.0]  # type: ignore[union-attr]

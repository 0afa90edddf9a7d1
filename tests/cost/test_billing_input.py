"""Billing export readers: formats, malformed rows, missing columns, BigQuery."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from orchestra.automations.cost import BigQuerySettings
from orchestra.automations.cost.billing import (
    BIGQUERY_SQL,
    billing_from_rows,
    credits_amount,
    parse_day,
    read_bigquery,
    read_billing_file,
)
from orchestra.errors import InputError
from orchestra.inputs import excerpt, open_input
from orchestra.toolkit.rows import MAX_RECORD_CHARS, GzipInput, LineBound, open_lines

HEADER = [
    "service.description",
    "sku.description",
    "usage_start_time",
    "usage_end_time",
    "project.id",
    "cost",
    "credits",
    "labels",
    "currency",
]


def good_row(day: int = 1, cost: str = "10.5", credits: str = "[]", project: str = "p1") -> list[str]:
    return [
        "Compute Engine",
        "N2 Core",
        f"2025-01-{day:02d} 00:00:00 UTC",
        f"2025-01-{day:02d} 01:00:00 UTC",
        project,
        cost,
        credits,
        "[]",
        "USD",
    ]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_reads_csv_with_credits_and_net_cost(tmp_path: Path) -> None:
    credit = json.dumps(
        [{"name": "Sustained usage discount", "amount": -2.5}, {"name": "Free tier", "amount": -1}]
    )
    path = write_csv(
        tmp_path / "b.csv", [good_row(1, "10", credit), good_row(2, "4.25"), good_row(2, "1", "", "")]
    )
    data = read_billing_file(path, max_bad_share=0.0)
    assert data.rows == 3 and data.bad.count == 0
    assert data.net.tolist() == [6.5, 4.25, 1.0]
    assert [dt.date.fromordinal(int(d)).isoformat() for d in data.day] == [
        "2025-01-01",
        "2025-01-02",
        "2025-01-02",
    ]
    assert data.project_names == ["p1", "(no project)"] or set(data.project_names) == {"p1", "(no project)"}
    assert data.currency == "USD"


def test_malformed_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    rows = [good_row(d % 28 + 1) for d in range(400)]
    rows[9] = good_row(1, "abc")  # line 11
    rows[19][2] = "yesterday"  # line 21
    rows[29] = rows[29][:4]  # line 31: too few fields
    rows[39][6] = "{not json"  # line 41
    rows[49][0] = ""  # line 51: empty service
    path = write_csv(tmp_path / "b.csv", rows)
    data = read_billing_file(path, max_bad_share=0.05)
    assert data.rows == 400 and data.bad.count == 5
    lines = {item["line"]: item["reason"] for item in data.bad.as_dict()["lines"]}
    assert sorted(lines) == [11, 21, 31, 41, 51]
    assert "cost" in lines[11] and "'abc'" in lines[11]
    assert "usage_start_time" in lines[21]
    assert "4 fields, expected 9" in lines[31]
    assert "credits" in lines[41]
    assert "service.description" in lines[51]
    assert len(data.net) == 395


def test_too_many_bad_rows_fail_with_input_error(tmp_path: Path) -> None:
    rows = [good_row(1) for _ in range(50)] + [good_row(1, "n/a") for _ in range(2)]
    path = write_csv(tmp_path / "b.csv", rows)
    with pytest.raises(InputError) as err:
        read_billing_file(path, max_bad_share=0.01)
    message = str(err.value)
    assert str(path) in message and "2 of 52 rows are malformed" in message and "line 52" in message
    # the same file is accepted under a looser limit
    assert read_billing_file(path, max_bad_share=0.05).bad.count == 2


def test_missing_column_names_it_and_the_accepted_names(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "project.id"]
    rows = [[v for h, v in zip(HEADER, good_row(), strict=True) if h != "project.id"]]
    path = write_csv(tmp_path / "b.csv", rows, header)
    with pytest.raises(
        InputError, match=r"missing column 'project.id' \(accepted names: project.id, project_id, project\)"
    ):
        read_billing_file(path, max_bad_share=0.5)


def test_flattened_column_names_are_accepted(tmp_path: Path) -> None:
    header = ["service_description", "sku_description", "usage_start_time", "project_id", "cost", "credits"]
    path = write_csv(
        tmp_path / "b.csv", [["BigQuery", "Analysis", "2025-02-01T10:00:00Z", "p", "3", "-1"]], header
    )
    data = read_billing_file(path, max_bad_share=0.0)
    assert data.net.tolist() == [2.0] and data.service_names == ["BigQuery"]


def test_jsonl_nested_like_bigquery_json_export(tmp_path: Path) -> None:
    records = [
        {
            "service": {"id": "6F81", "description": "Compute Engine"},
            "sku": {"description": "N2 Core"},
            "usage_start_time": "2025-01-01T23:30:00-02:00",
            "project": {"id": "p1"},
            "cost": 5.0,
            "credits": [{"name": "SUD", "amount": -1.0}],
            "currency": "USD",
        },
        {
            "service.description": "Cloud Run",
            "usage_start_time": "2025-01-02 00:00:00 UTC",
            "project.id": "p1",
            "cost": "2.5",
            "currency": "USD",
        },
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n{broken\n")
    data = read_billing_file(path, max_bad_share=0.5)
    assert data.rows == 3 and data.bad.count == 1 and data.bad.examples[0][0] == 4
    # 23:30 at UTC-2 is 01:30 UTC on the next day
    assert [dt.date.fromordinal(int(d)).isoformat() for d in data.day] == ["2025-01-02", "2025-01-02"]
    assert data.net.tolist() == [4.0, 2.5]
    assert data.sku_names[int(data.sku[1])] == "(no sku)"


def test_jsonl_lines_that_are_not_objects_are_bad_rows(tmp_path: Path) -> None:
    good = {"service.description": "X", "usage_start_time": "2025-01-01", "project.id": "p", "cost": 1}
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join([json.dumps(good), "[1, 2]", "", '"text"', json.dumps(good)]) + "\n")
    data = read_billing_file(path, max_bad_share=0.5)
    assert data.rows == 4 and data.net.tolist() == [1.0, 1.0]
    assert data.bad.examples == [(2, "expected a JSON object"), (4, "expected a JSON object")]


def test_jsonl_missing_field_everywhere_is_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"service.description": "X", "project.id": "p", "cost": 1}) + "\n")
    with pytest.raises(
        InputError, match=r"missing column 'usage_start_time' \(accepted names: usage_start_time\)"
    ):
        read_billing_file(path, max_bad_share=0.5)


def test_gzip_and_mixed_currencies(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "b.csv", [good_row(1), good_row(2)])
    packed = tmp_path / "b.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_billing_file(packed, max_bad_share=0).net.sum() == pytest.approx(21.0)
    euro = good_row(3)
    euro[-1] = "EUR"
    mixed = write_csv(tmp_path / "m.csv", [good_row(1), euro])
    with pytest.raises(InputError, match=r"rows in 2 currencies \(.EUR., .USD.\)"):
        read_billing_file(mixed, max_bad_share=0)


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_billing_file(tmp_path / "nope.csv", max_bad_share=0)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_billing_file(tmp_path / "empty.csv", max_bad_share=0)
    write_csv(tmp_path / "header.csv", [])
    with pytest.raises(InputError, match="no data rows"):
        read_billing_file(tmp_path / "header.csv", max_bad_share=0)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2025-03-01 00:00:00 UTC", "2025-03-01"),
        ("2025-03-01T23:00:00Z", "2025-03-01"),
        ("2025-03-01T23:00:00-05:00", "2025-03-02"),
        ("2025-03-01", "2025-03-01"),
    ],
)
def test_parse_day(text: str, day: str) -> None:
    assert dt.date.fromordinal(parse_day(text)).isoformat() == day


def test_credits_amount_shapes() -> None:
    assert credits_amount('[{"amount": -1.5}, {"amount": "-0.5"}]') == -2.0
    assert credits_amount("-3") == -3.0 and credits_amount("") == 0.0 and credits_amount(None) == 0.0
    with pytest.raises(ValueError):
        credits_amount('{"amount": 1}')


# ----- BigQuery -----


class FakeJob:
    def __init__(self, rows: list[object]) -> None:
        self.rows = rows

    def result(self) -> list[object]:
        return self.rows


class FakeBigQuery:
    """Stands in for google.cloud.bigquery.Client: records the query, returns real Row objects."""

    def __init__(self, rows: list[object]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, object]] = []
        self.locations: list[str | None] = []

    def query(self, sql: str, job_config: object = None, location: str | None = None) -> FakeJob:
        self.queries.append((sql, job_config))
        self.locations.append(location)
        return FakeJob(self.rows)


def bq_rows() -> list[object]:
    from google.cloud.bigquery import Row

    fields = {
        "day": 0,
        "project_id": 1,
        "service": 2,
        "sku": 3,
        "currency": 4,
        "cost": 5,
        "credits": 6,
        "row_count": 7,
    }
    return [
        Row((dt.date(2025, 1, 1), "shop-prod", "Compute Engine", "N2 Core", "USD", 120.0, -24.0, 96), fields),
        Row((dt.date(2025, 1, 1), None, "Support", "Enhanced Support", "USD", 50.0, None, 1), fields),
        Row((dt.date(2025, 1, 2), "shop-prod", "Compute Engine", "N2 Core", "USD", 130.0, -26.0, 96), fields),
    ]


def test_bigquery_source_queries_the_export_and_aggregates() -> None:
    client = FakeBigQuery(bq_rows())
    settings = BigQuerySettings(table="billing-proj.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9")
    data = read_bigquery(settings, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 3), client=client)
    sql, config = client.queries[0]
    assert client.locations == [settings.location]  # the job runs where the settings say
    assert "`billing-proj.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9`" in sql
    assert "UNNEST(credits)" in sql and "_PARTITIONTIME" in sql
    params = {p.name: (p.type_, p.value) for p in config.query_parameters}
    assert params == {
        "partition_start": ("DATE", dt.date(2024, 12, 29)),
        "start": ("DATE", dt.date(2025, 1, 1)),
        "end": ("DATE", dt.date(2025, 1, 3)),
    }
    assert config.maximum_bytes_billed == settings.maximum_bytes_billed
    assert data.net.tolist() == [96.0, 50.0, 104.0]
    assert "(no project)" in data.project_names
    assert data.source.startswith("bigquery:")


def test_bigquery_table_id_is_validated() -> None:
    settings = BigQuerySettings(table="x`; DROP TABLE y; --")
    with pytest.raises(InputError, match="is not a table id"):
        read_bigquery(settings, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 2), client=FakeBigQuery([]))
    assert "{table}" in BIGQUERY_SQL


def test_bigquery_empty_window_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no rows"):
        billing_from_rows([], source="bigquery:t")


def test_large_chunked_file_keeps_every_row(tmp_path: Path) -> None:
    rows = [good_row(d % 28 + 1, f"{d % 7 + 1}") for d in range(70_000)]  # more than one chunk
    data = read_billing_file(write_csv(tmp_path / "b.csv", rows), max_bad_share=0)
    assert data.rows == 70_000 and float(data.net.sum()) == pytest.approx(
        sum(d % 7 + 1 for d in range(70_000))
    )
    assert np.unique(data.day).size == 28


# ----- hostile and broken files: bounded reading, strict UTF-8, excerpts only -----


def packed(text: bytes) -> bytes:
    return gzip.compress(text, compresslevel=9)


def test_gzip_input_stops_at_the_limit_of_decompressed_bytes(tmp_path: Path) -> None:
    path = tmp_path / "b.csv.gz"
    path.write_bytes(packed(b"a" * 1000))
    with open_input(path) as raw:
        assert GzipInput(raw, 1000, "where").read() == b"a" * 1000  # exactly the limit is fine
    with open_input(path) as raw:
        reader = GzipInput(raw, 999, "b.csv.gz")
        assert reader.read(500) == b"a" * 500
        with pytest.raises(
            InputError, match=r"^b.csv.gz: decompresses to more than the input limit of 999 bytes"
        ):
            reader.read(1000)


def test_gzip_input_never_decompresses_much_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(packed(b"\n" * (64 << 20)))  # 64 MiB of text in ~64 KiB
    assert path.stat().st_size < 100_000
    with open_input(path) as raw:
        reader = GzipInput(raw, 4096, "bomb")
        tracemalloc.start()
        try:
            with pytest.raises(InputError, match="decompresses to more than"):
                reader.read()  # an unbounded read asks for limit + 1 bytes only
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2 << 20


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"ORCHESTRA_API_TOKENS=secret-token-123\n", "no gzip header"),
        (gzip.compress(b"service,cost\n" * 100)[:-30], "truncated"),
        (gzip.compress(b"x" * 100)[:-8] + b"\x00\x00\x00\x00" + (100).to_bytes(4, "little"), "checksum"),
    ],
    ids=["not-gzip", "truncated", "bad-crc"],
)
def test_broken_gzip_is_an_input_error_without_its_bytes(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "b.csv.gz"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_billing_file(path, max_bad_share=0)
    assert f"not a valid gzip file ({problem}" in str(err.value)
    assert "secret" not in str(err.value) and "ORCH" not in str(err.value)


def test_limits_apply_to_the_file_and_to_what_it_decompresses_to(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", [good_row(d % 28 + 1) for d in range(100)])
    size = path.stat().st_size
    assert read_billing_file(path, max_bad_share=0, max_bytes=size).rows == 100
    with pytest.raises(InputError, match=f"{size} bytes, larger than the input limit of {size - 1} bytes"):
        read_billing_file(path, max_bad_share=0, max_bytes=size - 1)
    gz = tmp_path / "b.csv.gz"
    gz.write_bytes(packed(path.read_bytes()))
    assert gz.stat().st_size < size // 4
    assert read_billing_file(gz, max_bad_share=0, max_bytes=size).rows == 100
    with pytest.raises(InputError, match=f"^{gz}: decompresses to more than the input limit of {size - 1}"):
        read_billing_file(gz, max_bad_share=0, max_bytes=size - 1)


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/dev/zero", "not a regular file"), ("/dev/urandom", "not a regular file"), (".", "is a directory")],
)
def test_devices_and_directories_are_refused_before_reading(path: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        read_billing_file(path, max_bad_share=0)


def test_binary_and_latin1_files_are_not_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(128, 256)) * 10)
    with pytest.raises(InputError, match=rf"^{binary}:1: not UTF-8 text"):
        read_billing_file(binary, max_bad_share=0)
    nul = tmp_path / "n.jsonl"
    nul.write_bytes(b'{"a": 1}\n{"b": 2}\n\x00\x00\x00')
    with pytest.raises(InputError, match=rf"^{nul}:3: contains NUL bytes"):
        read_billing_file(nul, max_bad_share=0)


def test_a_non_utf8_byte_is_reported_on_its_own_line(tmp_path: Path) -> None:
    latin = tmp_path / "b.csv"
    latin.write_bytes(
        b",".join(h.encode() for h in HEADER) + b"\n" + b"Caf\xe9,N2,2025-01-01,p,1,[],[],USD\n"
    )
    with pytest.raises(InputError, match=rf"^{latin}:2: not UTF-8 text"):
        read_billing_file(latin, max_bad_share=0)


def test_bad_values_are_quoted_as_bounded_sanitized_excerpts(tmp_path: Path) -> None:
    secret = "ORCHESTRA_API_TOKENS=secret-token-123"
    rows = [good_row(d % 28 + 1) for d in range(200)]
    rows[0] = good_row(1, "x" * 45 + secret)  # line 2
    rows[1][0] = "\x1b[31mred"  # line 3: a terminal escape in a name
    rows[2][4] = "p\u202e1"  # line 4: a right-to-left override in a name
    rows[3][2] = "é" * 60 + secret  # line 5: non-ASCII
    data = read_billing_file(write_csv(tmp_path / "b.csv", rows), max_bad_share=0.05)
    reasons = dict(data.bad.examples)
    assert reasons[2] == "cost: '" + "x" * 40 + "…' is not a number"
    assert reasons[3] == (
        f"service.description: {excerpt(chr(27) + '[31mred')} is empty, not text or holds control characters"
    )
    assert reasons[4].startswith(f"project.id: {excerpt('p' + chr(0x202E) + '1')}")
    assert reasons[5].startswith("usage_start_time: '" + "\\xe9" * 40 + "…'")
    shown = [reason.replace("…", "") for reason in reasons.values()]
    assert all(text.isascii() and text.isprintable() for text in shown)
    assert all(secret not in reason and "secret" not in reason for reason in reasons.values())
    # the same excerpts when too many rows are bad and the file is refused
    with pytest.raises(InputError) as err:
        read_billing_file(tmp_path / "b.csv", max_bad_share=0.01)
    assert "secret" not in str(err.value) and "\x1b" not in str(err.value)


def test_json_values_that_are_not_text_where_names_belong_are_bad_rows(tmp_path: Path) -> None:
    good = {"service.description": "X", "usage_start_time": "2025-01-01", "project.id": "p", "cost": 1}
    rows = [good, {**good, "service.description": {"nested": "object"}}, {**good, "project.id": ["a"]}]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows * 20) + "\n")
    data = read_billing_file(path, max_bad_share=0.7)
    assert data.rows == 60 and data.bad.count == 40
    assert data.service_names == ["X"] and data.project_names == ["p"]
    assert data.bad.examples[0] == (
        2,
        "service.description: '{\\'nested\\': \\'object\\'}' is empty, not text or holds control characters",
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000, "invalid JSON: nested too deeply"),
        ('{"service.description": "X\\ud800", "cost": 1}', "lone surrogate"),
        ('{"a": "' + "y" * (MAX_RECORD_CHARS + 1) + '"}', f"longer than {MAX_RECORD_CHARS:,} characters"),
    ],
    ids=["deep", "lone-surrogate", "too-long"],
)
def test_json_lines_that_would_crash_or_bloat_are_bad_rows(tmp_path: Path, line: str, reason: str) -> None:
    good = json.dumps(
        {"service.description": "X", "usage_start_time": "2025-01-01", "project.id": "p", "cost": 1}
    )
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join([good, line, good]) + "\n")
    data = read_billing_file(path, max_bad_share=0.5)
    assert data.rows == 3 and data.bad.count == 1
    assert data.bad.examples[0][0] == 2 and reason in data.bad.examples[0][1]


def test_a_surrogate_pair_is_a_character(tmp_path: Path) -> None:
    record = {
        "service.description": "Run \ud83d\ude80",
        "usage_start_time": "2025-01-01",
        "project.id": "p",
        "cost": 1,
    }
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(record) + "\n")  # ensure_ascii writes the rocket as a \ud83d\ude80 pair
    assert "\\ud83d" in path.read_text()
    assert read_billing_file(path, max_bad_share=0).service_names == ["Run \U0001f680"]


def test_line_endings_quoted_line_breaks_and_byte_order_mark(tmp_path: Path) -> None:
    header = ",".join(HEADER)
    credit = '"[{""name"": ""SUD"",\n  ""amount"": -2}]"'  # a credit list quoted across two lines
    text = (
        "\ufeff"
        + header
        + "\r\n"
        + f"Cloud Run,CPU,2025-01-01,2025-01-01,p,5,{credit},[],USD\r\n"
        + ",".join(good_row(2))
        + "\r\n"
    )
    path = tmp_path / "b.csv"
    path.write_text(text, newline="")
    data = read_billing_file(path, max_bad_share=0)
    assert data.rows == 2 and data.net.tolist() == [3.0, 10.5]
    mac = tmp_path / "mac.csv"
    mac.write_text(header + "\r" + ",".join(good_row(1)) + "\r", newline="")
    with pytest.raises(InputError, match=rf"^{mac}:1: carriage return inside an unquoted field"):
        read_billing_file(mac, max_bad_share=0)


def test_a_field_past_the_csv_limit_names_its_line(tmp_path: Path) -> None:
    rows = [good_row(1), good_row(2)]
    rows[1][1] = "s" * 200_000
    path = write_csv(tmp_path / "b.csv", rows)
    with pytest.raises(InputError, match=rf"^{path}:3: not valid CSV: field larger than field limit"):
        read_billing_file(path, max_bad_share=0.9)


def test_many_currencies_are_listed_as_a_few_excerpts(tmp_path: Path) -> None:
    rows = []
    for i in range(10):
        row = good_row(i + 1)
        row[-1] = f"C{i}" + "z" * 100
        rows.append(row)
    with pytest.raises(InputError) as err:
        read_billing_file(write_csv(tmp_path / "b.csv", rows), max_bad_share=0)
    message = str(err.value)
    assert "rows in 10 currencies" in message and "and 7 more" in message
    assert "z" * 41 not in message


def first_long_line(data: bytes, limit: int) -> int | None:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > limit:
            return number
    return None


def test_line_bound_names_the_first_line_that_is_too_long() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = bytes(rng.choice(b"ab\n\n") for _ in range(rng.randrange(0, 60)))
        limit, chunk = rng.randrange(1, 8), rng.randrange(1, 20)
        reader = LineBound(io.BytesIO(data), limit, "f")
        expected = first_long_line(data, limit)
        if expected is None:
            while reader.read(chunk):
                pass
        else:
            with pytest.raises(InputError, match=rf"^f:{expected}: line longer than {limit} bytes"):
                while reader.read(chunk):
                    pass


def test_one_endless_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b",".join(h.encode() for h in HEADER) + b"\n" + b"a" * (8 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=rf"^{path}:2: line longer than 65,536 bytes"):
            with open_lines(path, max_line_bytes=65536) as lines:
                for _ in lines:
                    pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # a few chunks, not the 8 MiB line
    # under the default line bound (16 MiB) the CSV field limit stops this line
    with pytest.raises(InputError, match=rf"^{path}:2: not valid CSV: field larger than field limit"):
        read_billing_file(path, max_bad_share=0)

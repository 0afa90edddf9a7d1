"""The BigQuery billing query, run for real: ``bigquery_sql`` is parsed by sqlglot in the BigQuery
dialect, transpiled to DuckDB and executed over the bundled sample billing rows loaded into a
table shaped like the standard export (nested ``service``/``sku``/``project`` records, repeated
``credits``, ``_PARTITIONTIME``). The daily series it yields must be the file reader's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import sqlglot
from orchestra.automations.cost.analysis import DailySeries, daily_series
from orchestra.automations.cost.billing import BillingData, bigquery_sql, billing_from_rows, read_billing_file

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "orchestra" / "samples" / "cost" / "billing.csv"
PROJECT, DATASET, TABLE = "example-project", "billing", "gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
QUALIFIED = f'"{PROJECT}".{DATASET}.{TABLE}'

EXPORT_SCHEMA = """
  billing_account_id VARCHAR,
  service STRUCT(id VARCHAR, description VARCHAR),
  sku STRUCT(id VARCHAR, description VARCHAR),
  usage_start_time TIMESTAMPTZ,
  usage_end_time TIMESTAMPTZ,
  project STRUCT(id VARCHAR, name VARCHAR),
  labels STRUCT(key VARCHAR, value VARCHAR)[],
  cost DOUBLE,
  currency VARCHAR,
  credits STRUCT(name VARCHAR, amount DOUBLE, type VARCHAR)[],
  _PARTITIONTIME TIMESTAMPTZ
"""

# The sample CSV flattens the export (``service.description`` columns, JSON text for the repeated
# records); rebuild the nested shape. Rows land in the partition of their usage day.
LOAD_SAMPLE = f"""
INSERT INTO {QUALIFIED}
SELECT
  billing_account_id,
  {{'id': NULL, 'description': "service.description"}},
  {{'id': NULL, 'description': "sku.description"}},
  CAST(replace(usage_start_time, ' UTC', '+00') AS TIMESTAMPTZ),
  CAST(replace(usage_end_time, ' UTC', '+00') AS TIMESTAMPTZ),
  {{'id': "project.id", 'name': "project.id"}},
  from_json(labels, '[{{"key": "VARCHAR", "value": "VARCHAR"}}]'),
  CAST(cost AS DOUBLE),
  currency,
  from_json(credits, '[{{"name": "VARCHAR", "amount": "DOUBLE", "type": "VARCHAR"}}]'),
  date_trunc('day', CAST(replace(usage_start_time, ' UTC', '+00') AS TIMESTAMPTZ))
FROM read_csv(?, all_varchar = true, header = true)
"""


@pytest.fixture(scope="module")
def export() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    # PROJECT.DATASET.TABLE resolves as catalog.schema.table: the query's table id is unchanged.
    connection.execute(f"ATTACH ':memory:' AS \"{PROJECT}\"")
    connection.execute(f'CREATE SCHEMA "{PROJECT}".{DATASET}')
    connection.execute(f"CREATE TABLE {QUALIFIED} ({EXPORT_SCHEMA})")
    connection.execute(LOAD_SAMPLE, [str(SAMPLE)])
    return connection


@pytest.fixture(scope="module")
def from_file() -> BillingData:
    return read_billing_file(SAMPLE, max_bad_share=0.0)


def run_query(connection: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    [sql] = sqlglot.transpile(
        bigquery_sql(f"{PROJECT}.{DATASET}.{TABLE}"),
        read="bigquery",
        write="duckdb",
        unsupported_level=sqlglot.ErrorLevel.RAISE,
    )
    cursor = connection.execute(
        sql, {"partition_start": start - dt.timedelta(days=3), "start": start, "end": end}
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def by_name(data: BillingData, series: DailySeries) -> dict[tuple[str, str], np.ndarray]:
    return {
        (data.project_names[int(p)], data.service_names[int(s)]): series.values[i]
        for i, (p, s) in enumerate(series.keys)
    }


def test_the_query_is_valid_bigquery_sql() -> None:
    [tree] = sqlglot.parse(bigquery_sql(f"{PROJECT}.{DATASET}.{TABLE}"), read="bigquery")
    assert tree is not None
    table = tree.find(sqlglot.exp.Table)
    assert table is not None
    assert (table.catalog, table.db, table.name) == (PROJECT, DATASET, TABLE)
    parameters = {p.name for p in tree.find_all(sqlglot.exp.Parameter)}
    assert parameters == {"partition_start", "start", "end"}


def test_daily_series_from_the_query_equals_the_file_reader(
    export: duckdb.DuckDBPyConnection, from_file: BillingData
) -> None:
    first = dt.date.fromordinal(int(from_file.day.min()))
    last = dt.date.fromordinal(int(from_file.day.max()))

    rows = run_query(export, first, last + dt.timedelta(days=1))
    from_query = billing_from_rows(rows, source=f"bigquery:{PROJECT}.{DATASET}.{TABLE}")

    assert sum(row["row_count"] for row in rows) == from_file.rows == 9048
    assert from_query.currency == from_file.currency == "USD"
    file_series, query_series = daily_series(from_file), daily_series(from_query)
    assert query_series.first_day == file_series.first_day
    assert query_series.days == file_series.days
    expected, actual = by_name(from_file, file_series), by_name(from_query, query_series)
    assert sorted(actual) == sorted(expected)
    for key, values in expected.items():
        # SQL sums per (day, project, service, sku) before the series sums per day: the same
        # amounts added in another order differ by float rounding (~1e-13) only. At the export's
        # own precision (micro-units) the series are identical.
        np.testing.assert_array_equal(np.round(actual[key], 6), np.round(values, 6), err_msg=str(key))
        np.testing.assert_allclose(actual[key], values, rtol=0, atol=1e-9, err_msg=str(key))


def test_the_window_bounds_are_half_open_usage_days(
    export: duckdb.DuckDBPyConnection, from_file: BillingData
) -> None:
    first = dt.date.fromordinal(int(from_file.day.min()))
    start, end = first + dt.timedelta(days=7), first + dt.timedelta(days=14)

    rows = run_query(export, start, end)

    days = sorted({row["day"] for row in rows})
    assert days == [start + dt.timedelta(days=d) for d in range(7)]
    in_window = (from_file.day >= start.toordinal()) & (from_file.day < end.toordinal())
    assert sum(row["row_count"] for row in rows) == int(in_window.sum())

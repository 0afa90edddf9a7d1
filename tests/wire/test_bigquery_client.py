"""``read_bigquery`` driven through the real ``google.cloud.bigquery.Client`` against the local
wire server: what the library puts on the wire for the billing query (``jobs.insert``), how it
reads the results back (``jobs.get``, then ``jobs.getQueryResults`` page by page), and what the
cost automation gets when BigQuery refuses or fails.

The recorded responses under ``tests/fixtures/wire/bigquery/`` have the REST API's own shapes:
cells are ``{"f": [{"v": ...}]}`` with every scalar as a string (or null), and the page requests
carry the ``fields`` mask the library asks for (``jobReference,totalRows,pageToken,rows``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import retry_base, retry_unary
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery import _job_helpers
from orchestra.automations.cost import BigQuerySettings
from orchestra.automations.cost.analysis import daily_series
from orchestra.automations.cost.billing import BillingData, bigquery_sql, billing_from_rows, read_bigquery
from orchestra.errors import is_transient

from .server import Recorded, Reply, WireServer, load_fixture

PROJECT = "example-project"
LOCATION = "EU"
TABLE = f"{PROJECT}.billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
JOB_ID = "7d3e2a9c-4b1f-4e8a-9c6d-2f0a8b5e1c73"
JOBS = f"/bigquery/v2/projects/{PROJECT}/jobs"
JOB = f"{JOBS}/{JOB_ID}"
QUERY_RESULTS = f"/bigquery/v2/projects/{PROJECT}/queries/{JOB_ID}"
START, END = dt.date(2025, 11, 3), dt.date(2025, 11, 6)
SETTINGS = BigQuerySettings(table=TABLE, job_project=PROJECT, location=LOCATION)


def fixture(name: str) -> Any:
    return load_fixture(f"bigquery/{name}")


@pytest.fixture
def client(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> bigquery.Client:
    """The client ``read_bigquery`` would build from the settings, pointed at the wire server.

    Job ids are random UUIDs made by the library; the recorded job resources carry one fixed id,
    so the library is made to choose that one."""

    def fixed_job_id(job_id: str | None = None, prefix: str | None = None) -> str:
        assert job_id is None and prefix is None, "read_bigquery lets the library name the job"
        return JOB_ID

    monkeypatch.setattr(_job_helpers, "make_job_id", fixed_job_id)
    return bigquery.Client(
        project=SETTINGS.job_project,
        location=SETTINGS.location,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": wire.base_url},
    )


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The library's retry loop sleeps between attempts and checks its deadline on a monotonic
    clock: both are replaced by a clock that advances by the sleeps it is asked for, so a retry
    schedule of minutes runs at once. The sleeps asked for are collected."""
    sleeps: list[float] = []
    now = [time.monotonic()]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    clock = SimpleNamespace(sleep=sleep, monotonic=lambda: now[0])
    # retry_target computes the deadline, the shared error helper checks it: both read this clock
    monkeypatch.setattr(retry_unary, "time", clock)
    monkeypatch.setattr(retry_base, "time", clock)
    yield sleeps


def script_success(wire: WireServer, *page2_replies: Reply) -> None:
    wire.answer("POST", JOBS, Reply(200, fixture("jobs_insert_running.json")))
    wire.answer("GET", JOB, Reply(200, fixture("jobs_get_done.json")))
    wire.answer(
        "GET",
        QUERY_RESULTS,
        Reply(200, fixture("query_results_complete.json")),
        Reply(200, fixture("query_results_page1.json")),
        *page2_replies,
        Reply(200, fixture("query_results_page2.json")),
    )


def decode_rows(pages: list[str]) -> list[dict[str, Any]]:
    """The recorded pages decoded by the REST encoding: every cell a string or null."""
    fields = fixture("query_results_complete.json")["schema"]["fields"]
    convert: dict[str, Callable[[str], Any]] = {
        "DATE": dt.date.fromisoformat,
        "STRING": str,
        "FLOAT": float,
        "INTEGER": int,
    }
    rows = []
    for page in pages:
        for row in fixture(page)["rows"]:
            cells = [cell["v"] for cell in row["f"]]
            rows.append(
                {
                    f["name"]: None if value is None else convert[f["type"]](value)
                    for f, value in zip(fields, cells, strict=True)
                }
            )
    return rows


def by_key(data: BillingData) -> dict[tuple[int, str, str, str], tuple[float, float]]:
    """(day, project, service, sku) -> (cost, credits), names decoded."""
    return {
        (
            int(data.day[i]),
            data.project_names[int(data.project[i])],
            data.service_names[int(data.service[i])],
            data.sku_names[int(data.sku[i])],
        ): (float(data.cost[i]), float(data.credits[i]))
        for i in range(len(data.day))
    }


def assert_same_billing(actual: BillingData, expected: BillingData) -> None:
    assert actual.rows == expected.rows
    assert actual.currency == expected.currency
    assert actual.source == expected.source
    assert actual.bad.count == expected.bad.count == 0
    assert by_key(actual) == by_key(expected)
    actual_series, expected_series = daily_series(actual), daily_series(expected)
    assert actual_series.first_day == expected_series.first_day
    assert actual_series.days == expected_series.days
    np.testing.assert_array_equal(actual_series.values.sum(axis=0), expected_series.values.sum(axis=0))


def page_requests(wire: WireServer) -> list[Recorded]:
    return [r for r in wire.received("GET", QUERY_RESULTS) if r.param("maxResults") != "0"]


def test_the_billing_query_goes_out_as_one_parameterised_standard_sql_job(
    wire: WireServer, client: bigquery.Client
) -> None:
    script_success(wire)

    read_bigquery(SETTINGS, start=START, end=END, client=client)

    [insert] = wire.received("POST", JOBS)
    assert insert.path == f"/bigquery/v2/projects/{PROJECT}/jobs"
    body = insert.json()
    assert body["jobReference"] == {"projectId": PROJECT, "jobId": JOB_ID, "location": LOCATION}
    assert body["configuration"]["labels"] == {"orchestra-automation": "cost"}
    query = body["configuration"]["query"]
    assert query["query"] == bigquery_sql(TABLE)
    assert query["useLegacySql"] is False
    assert query["parameterMode"] == "NAMED"
    # int64 travels as a decimal string in BigQuery's JSON
    assert query["maximumBytesBilled"] == str(SETTINGS.maximum_bytes_billed) == "53687091200"
    parameters = {p["name"]: (p["parameterType"], p["parameterValue"]) for p in query["queryParameters"]}
    assert parameters == {
        # partition_slack_days (3) before the window's first day
        "partition_start": ({"type": "DATE"}, {"value": "2025-10-31"}),
        "start": ({"type": "DATE"}, {"value": "2025-11-03"}),
        "end": ({"type": "DATE"}, {"value": "2025-11-06"}),
    }
    assert "gccl/" in insert.headers.get("x-goog-api-client", "")

    # Every read-back names the job's location; results come in the library's own field mask.
    reads = wire.received("GET")
    assert [r.path for r in reads] == [JOB, QUERY_RESULTS, QUERY_RESULTS, QUERY_RESULTS]
    assert all(r.param("location") == LOCATION for r in reads)
    assert reads[1].param("maxResults") == "0"  # completion check, no rows
    first, second = page_requests(wire)
    assert first.param("pageToken") is None
    assert second.param("pageToken") == fixture("query_results_page1.json")["pageToken"]
    assert second.param("fields") == first.param("fields") == "jobReference,totalRows,pageToken,rows"


def test_both_pages_of_rows_become_the_billing_data_of_the_same_rows(
    wire: WireServer, client: bigquery.Client
) -> None:
    script_success(wire)

    data = read_bigquery(SETTINGS, start=START, end=END, client=client)

    rows = decode_rows(["query_results_page1.json", "query_results_page2.json"])
    assert len(rows) == int(fixture("query_results_complete.json")["totalRows"]) == 6
    assert_same_billing(data, billing_from_rows(rows, source=f"bigquery:{TABLE}"))

    # The same numbers, spelled out from the recorded cells.
    assert data.source == f"bigquery:{TABLE}"
    assert data.currency == "USD"
    assert sorted(data.project_names) == ["(no project)", "shop-prod", "shop-staging"]
    series = daily_series(data)
    assert series.first_day == START.toordinal()
    assert series.days == 3
    gross = {
        dt.date(2025, 11, 3): 41.237511 + 7.8843 + 3.2258,
        dt.date(2025, 11, 4): 44.0122 + 1.0e-6,
        dt.date(2025, 11, 5): 39.9,
    }
    for day, amount in gross.items():
        on_day = data.day == day.toordinal()
        assert float(data.cost[on_day].sum()) == pytest.approx(amount, abs=1e-9)
    assert float(data.credits.sum()) == pytest.approx(-7.0, abs=1e-9)
    np.testing.assert_allclose(
        series.values.sum(axis=0), [52.347611 - 3.5, 44.012201 - 3.5, 39.9], rtol=0, atol=1e-9
    )


def test_access_denied_is_a_permanent_error_naming_the_table(
    wire: WireServer, client: bigquery.Client
) -> None:
    wire.answer("POST", JOBS, Reply(403, fixture("error_access_denied.json")))

    with pytest.raises(api_exceptions.Forbidden) as raised:
        read_bigquery(SETTINGS, start=START, end=END, client=client)

    error = raised.value
    assert is_transient(error) is False
    assert error.code == 403
    assert [e["reason"] for e in error.errors] == ["accessDenied"]
    message = str(error)
    assert message.startswith(f"403 POST {wire.base_url}{JOBS}")
    legacy_table_name = TABLE.replace(".", ":", 1)  # how BigQuery's messages spell a table
    assert f"Access Denied: Table {legacy_table_name}:" in message
    # Not retried, and nothing was read back.
    assert [(r.method, r.path) for r in wire.requests] == [("POST", JOBS)]


def test_a_backend_error_on_a_page_is_retried_by_the_library_with_the_same_page_token(
    wire: WireServer, client: bigquery.Client, retry_sleeps: list[float]
) -> None:
    script_success(wire, Reply(503, fixture("error_backend.json")))

    data = read_bigquery(SETTINGS, start=START, end=END, client=client)

    rows = decode_rows(["query_results_page1.json", "query_results_page2.json"])
    assert_same_billing(data, billing_from_rows(rows, source=f"bigquery:{TABLE}"))
    token = fixture("query_results_page1.json")["pageToken"]
    assert [r.param("pageToken") for r in page_requests(wire)] == [None, token, token]
    # One backoff (the library's first delay is at most one second), then success.
    assert len(retry_sleeps) == 1
    assert 0.0 <= retry_sleeps[0] <= 1.0


def test_a_page_that_keeps_failing_ends_in_a_transient_error_after_the_retry_deadline(
    wire: WireServer, client: bigquery.Client, retry_sleeps: list[float]
) -> None:
    wire.answer("POST", JOBS, Reply(200, fixture("jobs_insert_running.json")))
    wire.answer("GET", JOB, Reply(200, fixture("jobs_get_done.json")))
    wire.answer(
        "GET",
        QUERY_RESULTS,
        Reply(200, fixture("query_results_complete.json")),
        Reply(200, fixture("query_results_page1.json")),
        Reply(503, fixture("error_backend.json")),  # repeats from here on
    )

    with pytest.raises(api_exceptions.RetryError) as raised:
        read_bigquery(SETTINGS, start=START, end=END, client=client)

    assert is_transient(raised.value) is True
    assert isinstance(raised.value.cause, api_exceptions.ServiceUnavailable)
    # The library's own deadline (ten minutes of backoff) was spent, on the injected clock.
    assert sum(retry_sleeps) <= 600.0
    assert len(retry_sleeps) >= 2
    token = fixture("query_results_page1.json")["pageToken"]
    failing = page_requests(wire)[1:]
    assert len(failing) == len(retry_sleeps) + 1
    assert {r.param("pageToken") for r in failing} == {token}

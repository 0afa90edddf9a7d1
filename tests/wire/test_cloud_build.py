"""The Cloud Build suite runner through a real AuthorizedSession against the local wire server:
the builds.create request (path, step, environment, source, timeout), polling builds.get with the
injected clock, and recorded Build answers (SUCCESS, FAILURE, TIMEOUT, CANCELLED) mapped into the
suite result; refusals, transient errors and a build overdue past the suite's timeout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from orchestra.automations.testing.runners import SuiteJob, build_runner
from orchestra.automations.testing.runners.cloud_build import CloudBuildRunner
from orchestra.automations.testing.settings import Suite
from orchestra.clock import FakeClock
from orchestra.errors import TransientError, is_transient

from .server import Reply, WireServer, google_error

PARENT = "/v1/projects/example-project/locations/europe-west1"
CREATE = f"{PARENT}/builds"
BUILD_ID = "b39d0d74-6a46-4ea6-b4f6-876f456dc1b4"
GET = f"{CREATE}/{BUILD_ID}"
CANCEL = f"{GET}:cancel"
REVISION = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
START = dt.datetime(2026, 1, 8, 10, 0, tzinfo=dt.UTC)


def suite(**cloud_build: Any) -> Suite:
    return Suite.model_validate(
        {
            "command": ["python", "-m", "pytest", "-q"],
            "environment": {"CI": "1"},
            "timeout_seconds": 600,
            "runner": "cloud-build",
            "cloud_build": {
                "project": "example-project",
                "region": "europe-west1",
                "image": "python:3.11",
                "poll_seconds": 15,
                **cloud_build,
            },
        }
    )


def run(wire: WireServer, configured: Suite, clock: FakeClock) -> Any:
    runner = build_runner(
        configured, session=AuthorizedSession(AnonymousCredentials()), endpoint=wire.base_url
    )
    assert isinstance(runner, CloudBuildRunner)
    job = SuiteJob(
        name="unit", suite=configured, run_id="testing-abc", clock=clock, revision=REVISION, branch="develop"
    )
    return runner.run(job)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def test_success_creates_one_build_polls_it_and_passes(
    wire: WireServer, wire_fixture: Callable[[str], Any], clock: FakeClock
) -> None:
    wire.answer("POST", CREATE, Reply(200, wire_fixture("cloud_build/create_operation.json")))
    wire.answer(
        "GET",
        GET,
        Reply(200, wire_fixture("cloud_build/build_working.json")),
        Reply(200, wire_fixture("cloud_build/build_success.json")),
    )
    configured = suite(
        source_url="https://github.com/example/app.git",
        service_account="suites@example-project.iam.gserviceaccount.com",
        machine_type="E2_HIGHCPU_8",
    )

    result = run(wire, configured, clock)

    create, first, second = wire.requests
    assert (create.method, create.path, create.query) == ("POST", CREATE, {})
    assert create.headers["content-type"] == "application/json"
    assert create.json() == {
        "steps": [
            {
                "name": "python:3.11",
                "entrypoint": "python",
                "args": ["-m", "pytest", "-q"],
                "env": [
                    "CI=1",
                    "ORCHESTRA_SUITE=unit",
                    f"ORCHESTRA_REVISION={REVISION}",
                    "ORCHESTRA_BRANCH=develop",
                ],
            }
        ],
        "timeout": "600s",
        "tags": ["orchestra", "suite-unit"],
        "source": {"gitSource": {"url": "https://github.com/example/app.git", "revision": REVISION}},
        "serviceAccount": "projects/example-project/serviceAccounts/suites@example-project.iam.gserviceaccount.com",
        "options": {"machineType": "E2_HIGHCPU_8", "logging": "CLOUD_LOGGING_ONLY"},
    }
    assert [(r.method, r.path, r.body) for r in (first, second)] == [("GET", GET, b""), ("GET", GET, b"")]
    assert clock.now() == START + dt.timedelta(seconds=30)  # two polls, 15 s apart, no real sleeping
    assert result.status == "passed"
    assert result.reason == f"Cloud Build build {BUILD_ID} succeeded"
    assert (result.id, result.suite, result.revision, result.branch) == (
        "testing-abc:unit",
        "unit",
        REVISION,
        "develop",
    )
    # The build's own start and finish times give the duration.
    assert result.duration_seconds == pytest.approx(74.652, abs=0.001)
    assert (
        "logs: https://console.cloud.google.com/cloud-build/builds;region=europe-west1/" in result.output_tail
    )


def test_without_source_or_options_the_request_has_only_the_step(
    wire: WireServer, wire_fixture: Callable[[str], Any], clock: FakeClock
) -> None:
    wire.answer("POST", CREATE, Reply(200, wire_fixture("cloud_build/create_operation.json")))
    wire.answer("GET", GET, Reply(200, wire_fixture("cloud_build/build_success.json")))

    run(wire, suite(), clock)

    body = wire.received("POST", CREATE)[0].json()
    assert sorted(body) == ["steps", "tags", "timeout"]


@pytest.mark.parametrize(
    ("fixture", "status", "reason", "timed_out"),
    [
        (
            "build_failure.json",
            "failed",
            f'Cloud Build build {BUILD_ID} failed: Build step failure: build step 0 "python:3.11" failed: '
            "step exited with non-zero status: 1",
            False,
        ),
        (
            "build_timeout.json",
            "timed_out",
            f"timed out after 600s: Cloud Build stopped build {BUILD_ID}",
            True,
        ),
        (
            "build_cancelled.json",
            "error",
            f"Cloud Build build {BUILD_ID} ended CANCELLED: Build was cancelled",
            False,
        ),
    ],
)
def test_final_statuses_map_into_the_suite_result(
    wire: WireServer,
    wire_fixture: Callable[[str], Any],
    clock: FakeClock,
    fixture: str,
    status: str,
    reason: str,
    timed_out: bool,
) -> None:
    wire.answer("POST", CREATE, Reply(200, wire_fixture("cloud_build/create_operation.json")))
    wire.answer("GET", GET, Reply(200, wire_fixture(f"cloud_build/{fixture}")))

    result = run(wire, suite(), clock)

    assert (result.status, result.reason, result.timed_out) == (status, reason, timed_out)
    assert len(wire.received("GET", GET)) == 1


def test_a_refused_create_is_an_error_result_naming_the_status(wire: WireServer, clock: FakeClock) -> None:
    wire.answer(
        "POST",
        CREATE,
        google_error(403, "PERMISSION_DENIED", "The caller does not have permission"),
    )

    result = run(wire, suite(), clock)

    assert result.status == "error"
    assert result.reason.startswith("build not created: Cloud Build builds.create answered HTTP 403")
    assert "projects/example-project/locations/europe-west1" in result.reason
    assert len(wire.requests) == 1


def test_an_unavailable_api_is_transient(wire: WireServer, clock: FakeClock) -> None:
    wire.answer("POST", CREATE, google_error(503, "UNAVAILABLE", "The service is currently unavailable."))

    with pytest.raises(TransientError) as caught:
        run(wire, suite(), clock)

    assert is_transient(caught.value) and "HTTP 503" in str(caught.value)


def test_a_poll_failing_transiently_is_asked_again(
    wire: WireServer, wire_fixture: Callable[[str], Any], clock: FakeClock
) -> None:
    wire.answer("POST", CREATE, Reply(200, wire_fixture("cloud_build/create_operation.json")))
    wire.answer(
        "GET",
        GET,
        google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
        Reply(200, wire_fixture("cloud_build/build_success.json")),
    )

    result = run(wire, suite(), clock)

    assert result.status == "passed"
    assert len(wire.received("GET", GET)) == 2


def test_a_build_still_running_at_the_suite_timeout_is_cancelled(
    wire: WireServer, wire_fixture: Callable[[str], Any], clock: FakeClock
) -> None:
    wire.answer("POST", CREATE, Reply(200, wire_fixture("cloud_build/create_operation.json")))
    wire.answer("GET", GET, Reply(200, wire_fixture("cloud_build/build_working.json")))
    wire.answer("POST", CANCEL, Reply(200, wire_fixture("cloud_build/build_cancelled.json")))

    result = run(wire, suite(poll_seconds=60), clock)

    assert result.status == "timed_out" and result.timed_out
    assert result.reason == (
        f"timed out after 600s: Cloud Build build {BUILD_ID} was still WORKING; cancelled"
    )
    assert len(wire.received("GET", GET)) == 10  # every 60 s until 600 s had passed
    (cancel,) = wire.received("POST", CANCEL)
    assert cancel.json() == {
        "name": f"projects/example-project/locations/europe-west1/builds/{BUILD_ID}",
        "projectId": "example-project",
        "id": BUILD_ID,
    }

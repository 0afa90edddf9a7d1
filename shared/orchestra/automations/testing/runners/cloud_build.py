"""The Cloud Build runner: one build per suite run, through the Cloud Build REST API (v1).

``POST /v1/projects/P/locations/R/builds`` creates a build whose single step runs the suite's
command (``entrypoint`` = the program, ``args`` = the rest) in the configured builder image, with
the suite's environment plus ``ORCHESTRA_SUITE``, ``ORCHESTRA_REVISION`` and ``ORCHESTRA_BRANCH``;
with ``source_url`` the build clones that repository at the revision (``gitSource``). The build's
``timeout`` is the suite's. The answer is a long-running operation whose metadata carries the
build; ``GET .../builds/ID`` is then polled every ``poll_seconds`` (the injected clock sleeps)
until the build is final or the suite's timeout has passed (then the build is cancelled).

Mapping: ``SUCCESS`` -> passed, ``FAILURE`` -> failed, ``TIMEOUT`` (or not final within the
timeout) -> timed_out, ``INTERNAL_ERROR``/``CANCELLED``/``EXPIRED`` -> error, each with the build's
status detail, failure info and log URL. HTTP 429/5xx on creation is transient (the run is retried);
any other refusal is an ``error`` result naming the HTTP status, so a deployment gate reading it
is blocked with the reason instead of waiting forever.

Requests go through ``google.auth.transport.requests.AuthorizedSession`` (application default
credentials, ``cloud-platform`` scope) unless a session is injected.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ....errors import TransientError
from ..results import SuiteRun, SuiteStatus
from ..settings import CloudBuildSettings
from .base import SuiteJob, SuiteRunner

API_ROOT = "https://cloudbuild.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
FINAL = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
REQUEST_TIMEOUT_SECONDS = 60
TEXT_CHARS = 300
_TAG = re.compile(r"[^A-Za-z0-9_.-]")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class CloudBuildRefused(Exception):
    """Cloud Build answered with an error that retrying will not fix (permission, bad request)."""


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else None


def _tag(value: str) -> str:
    return _TAG.sub("-", value)[:128].lstrip("-.") or "x"


class CloudBuildRunner(SuiteRunner):
    kind = "cloud-build"

    def __init__(
        self, settings: CloudBuildSettings, *, session: Any = None, endpoint: str | None = None
    ) -> None:
        self.settings = settings
        self._session = session
        self.endpoint = (endpoint or API_ROOT).rstrip("/")

    @property
    def parent(self) -> str:
        return f"projects/{self.settings.project}/locations/{self.settings.region}"

    @property
    def session(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=[SCOPE])
            self._session = AuthorizedSession(credentials)
        return self._session

    # ------------------------------------------------------------------ the request
    def build_body(self, job: SuiteJob) -> dict[str, Any]:
        """The Build resource created for ``job``."""
        suite = job.suite
        env = {
            **suite.environment,
            "ORCHESTRA_SUITE": job.name,
            "ORCHESTRA_REVISION": job.revision or "",
            "ORCHESTRA_BRANCH": job.branch or "",
        }
        step: dict[str, Any] = {
            "name": self.settings.image,
            "entrypoint": suite.command[0],
            "args": suite.command[1:],
            "env": [f"{key}={value}" for key, value in env.items()],
        }
        if suite.cwd:
            step["dir"] = suite.cwd
        body: dict[str, Any] = {
            "steps": [step],
            "timeout": f"{suite.timeout_seconds:.0f}s",
            "tags": ["orchestra", _tag(f"suite-{job.name}")],
        }
        if self.settings.source_url and job.revision:
            body["source"] = {"gitSource": {"url": self.settings.source_url, "revision": job.revision}}
        options: dict[str, Any] = {}
        if self.settings.machine_type:
            options["machineType"] = self.settings.machine_type
        if self.settings.service_account:
            body["serviceAccount"] = (
                f"projects/{self.settings.project}/serviceAccounts/{self.settings.service_account}"
            )
            # A build under a chosen service account must say where its logs go.
            options["logging"] = "CLOUD_LOGGING_ONLY"
        if options:
            body["options"] = options
        return body

    def _call(self, method: str, url: str, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.session.request(method, url, json=body, timeout=REQUEST_TIMEOUT_SECONDS)
        except OSError as exc:
            raise TransientError(f"Cloud Build {what}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(f"Cloud Build {what} answered HTTP {status}: {response.text[:TEXT_CHARS]}")
        if status >= 400:
            raise CloudBuildRefused(
                f"Cloud Build {what} answered HTTP {status} for {self.parent}: {response.text[:TEXT_CHARS]}"
            )
        try:
            data = response.json()
        except ValueError:
            raise CloudBuildRefused(f"Cloud Build {what} answered HTTP {status} without JSON") from None
        if not isinstance(data, dict):
            raise CloudBuildRefused(
                f"Cloud Build {what} answered a JSON {type(data).__name__}, not an object"
            )
        return data

    # ------------------------------------------------------------------ the run
    def run(self, job: SuiteJob) -> SuiteRun:
        clock = job.clock
        started = clock.now()
        base: dict[str, Any] = {
            "id": job.result_id,
            "suite": job.name,
            "revision": job.revision,
            "branch": job.branch,
            "trigger": job.trigger,
            "run_id": job.run_id,
            "started_at": started,
            "command": job.suite.command,
            "expires_at": started + dt.timedelta(days=job.retention_days),
        }

        def error(reason: str) -> SuiteRun:
            now = clock.now()
            return SuiteRun(
                **base,
                status=SuiteStatus.error,
                reason=reason,
                finished_at=now,
                duration_seconds=round((now - started).total_seconds(), 3),
            )

        try:
            operation = self._call(
                "POST", f"{self.endpoint}/v1/{self.parent}/builds", "builds.create", self.build_body(job)
            )
        except CloudBuildRefused as exc:
            return error(f"build not created: {exc}")
        build = (operation.get("metadata") or {}).get("build") or {}
        build_id = build.get("id")
        if not isinstance(build_id, str) or not build_id:
            return error(f"builds.create answered without a build id (operation {operation.get('name')})")
        url = f"{self.endpoint}/v1/{self.parent}/builds/{build_id}"
        deadline = started + dt.timedelta(seconds=job.suite.timeout_seconds)
        while build.get("status") not in FINAL:
            if clock.now() >= deadline:
                return self._overdue(job, base, build_id, build, started)
            clock.sleep(self.settings.poll_seconds)
            try:
                build = self._call("GET", url, "builds.get")
            except TransientError:
                continue  # the build goes on; asked again at the next poll, within the deadline
            except CloudBuildRefused as exc:
                return error(f"build {build_id} could not be followed: {exc}")
        return self._result(job, base, build_id, build, started)

    def _overdue(
        self, job: SuiteJob, base: dict[str, Any], build_id: str, build: dict[str, Any], started: dt.datetime
    ) -> SuiteRun:
        cancel = f"{self.endpoint}/v1/{self.parent}/builds/{build_id}:cancel"
        body = {
            "name": f"{self.parent}/builds/{build_id}",
            "projectId": self.settings.project,
            "id": build_id,
        }
        last = build.get("status") or "pending"
        try:
            build = self._call("POST", cancel, "builds.cancel", body)
            note = "cancelled"
        except (TransientError, CloudBuildRefused) as exc:
            note = f"could not be cancelled ({exc})"
        now = job.clock.now()
        return SuiteRun(
            **base,
            status=SuiteStatus.timed_out,
            reason=f"timed out after {job.suite.timeout_seconds:g}s: Cloud Build build {build_id} was still "
            f"{last}; {note}",
            finished_at=now,
            duration_seconds=round((now - started).total_seconds(), 3),
            timed_out=True,
            output_tail=self._describe(build_id, build),
        )

    @staticmethod
    def _describe(build_id: str, build: dict[str, Any]) -> str:
        parts = [f"Cloud Build build {build_id}: {build.get('status') or 'unknown'}"]
        if build.get("statusDetail"):
            parts.append(str(build["statusDetail"])[:TEXT_CHARS])
        failure = build.get("failureInfo") or {}
        if failure.get("type") or failure.get("detail"):
            parts.append(f"{failure.get('type', 'failure')}: {str(failure.get('detail', ''))[:TEXT_CHARS]}")
        if build.get("logUrl"):
            parts.append(f"logs: {build['logUrl']}")
        return "\n".join(parts)

    def _result(
        self, job: SuiteJob, base: dict[str, Any], build_id: str, build: dict[str, Any], started: dt.datetime
    ) -> SuiteRun:
        status = build["status"]
        begun, ended = _parse_time(build.get("startTime")), _parse_time(build.get("finishTime"))
        now = job.clock.now()
        duration = (ended - begun).total_seconds() if begun and ended else (now - started).total_seconds()
        detail = self._describe(build_id, build)
        failure = build.get("failureInfo") or {}
        why = str(failure.get("detail") or build.get("statusDetail") or "").strip()[:TEXT_CHARS]
        if status == "SUCCESS":
            outcome, reason = SuiteStatus.passed, f"Cloud Build build {build_id} succeeded"
        elif status == "FAILURE":
            outcome = SuiteStatus.failed
            reason = f"Cloud Build build {build_id} failed" + (f": {why}" if why else "")
        elif status == "TIMEOUT":
            outcome = SuiteStatus.timed_out
            reason = f"timed out after {job.suite.timeout_seconds:g}s: Cloud Build stopped build {build_id}"
        else:
            outcome = SuiteStatus.error
            reason = f"Cloud Build build {build_id} ended {status}" + (f": {why}" if why else "")
        return SuiteRun(
            **base,
            status=outcome,
            reason=reason,
            finished_at=now,
            duration_seconds=round(max(duration, 0.0), 3),
            timed_out=status == "TIMEOUT",
            counts={"passed": 0, "failed": 0, "error": 0, "skipped": 0, "tests": 0},
            output_tail=detail,
        )

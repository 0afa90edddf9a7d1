"""Testing settings (``automations.testing.settings``): suites and the flaky-test rules."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...config import check_cron

_SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SuiteTriggers(Section):
    push: list[str] = Field(
        default_factory=list, description="branches (fnmatch patterns) whose pushes run the suite"
    )
    schedule: str | None = Field(
        None, description="cron (UTC, exactly 5 fields): the suite is due once per occurrence"
    )
    manual: bool = Field(True, description="runs on a manual `orchestra run testing` without --param suite")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)


_PROJECT = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
_SERVICE_ACCOUNT = re.compile(
    r"^[^@\s/]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com$|^[^@\s/]+@developer\.gserviceaccount\.com$"
)


class CloudBuildSettings(Section):
    """Where a ``runner: cloud-build`` suite runs: one Cloud Build build per suite run, its single
    step the suite's command in ``image``, on the pushed revision when ``source_url`` is given."""

    project: str = Field(pattern=_PROJECT, description="Google Cloud project id the builds run in")
    region: str = Field(
        "global", pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Cloud Build location, e.g. europe-west1"
    )
    image: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[^\s]+$",
        description="builder image the command runs in, e.g. python:3.11 or europe-docker.pkg.dev/P/ci/py",
    )
    source_url: str | None = Field(
        None,
        pattern=r"^https://[^\s]+$",
        description="https git URL Cloud Build clones at the revision (gitSource); "
        "without it the command gets no source and must fetch ORCHESTRA_REVISION itself",
    )
    service_account: str | None = Field(
        None, description="e-mail of the service account the build runs as (default: Cloud Build's)"
    )
    machine_type: str | None = Field(
        None, pattern=r"^[A-Z0-9_]{1,40}$", description="e.g. E2_HIGHCPU_8 (default: Cloud Build's)"
    )
    poll_seconds: float = Field(10, gt=0, le=300, description="how often the build is polled (seconds)")

    @field_validator("service_account")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _SERVICE_ACCOUNT.match(value):
            raise ValueError(
                f"{value[:80]!r} is not a service account e-mail (NAME@PROJECT.iam.gserviceaccount.com)"
            )
        return value


class Suite(Section):
    command: list[str] = Field(min_length=1, description="argument list; no shell")
    runner: Literal["command", "cloud-build"] = Field(
        "command",
        description="where the command runs: command (a local process) or cloud-build (a Cloud Build build)",
    )
    cloud_build: CloudBuildSettings | None = Field(
        None, description="runner: cloud-build: where the build runs"
    )
    cwd: str | None = Field(
        None, description="working directory (default: --param repo, else the current one)"
    )
    timeout_seconds: float = Field(
        900, gt=0, le=86400, description="the whole process group is killed after this (seconds, <= 1 day)"
    )
    environment: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    junit: str | None = Field(None, description="JUnit XML the command writes (relative to cwd)")
    triggers: SuiteTriggers = SuiteTriggers()

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program (first argument) is empty")
        return value

    @model_validator(mode="after")
    def _runner_fields(self) -> Suite:
        if self.runner == "cloud-build":
            if self.cloud_build is None:
                raise ValueError(
                    "runner cloud-build needs cloud_build: {project: P, image: IMAGE} "
                    "(optional: region, source_url, service_account, machine_type, poll_seconds)"
                )
            if self.junit is not None:
                raise ValueError(
                    "junit is not read from Cloud Build: a cloud-build suite's result is its build status "
                    "(remove junit, or use runner: command)"
                )
            if self.cwd is not None and (self.cwd.startswith("/") or ".." in self.cwd.split("/")):
                raise ValueError(
                    f"cwd {self.cwd!r}: a cloud-build suite's cwd is a directory inside the build's source "
                    "(relative, without '..')"
                )
        elif self.cloud_build is not None:
            raise ValueError("cloud_build is set but runner is command; set runner: cloud-build or drop it")
        return self


class FlakyRules(Section):
    history_runs: int = Field(30, ge=2, le=500, description="how many recent runs of a suite to analyse")
    min_runs: int = Field(
        5, ge=2, le=500, description="runs of a test needed before flip counting judges it (2..500)"
    )
    flip_rate: float = Field(
        0.3, gt=0, le=1, description="outcome changes / (runs - 1) at or above this marks a test flaky"
    )
    quarantine_rate: float = Field(
        0.2,
        gt=0,
        le=1,
        description="flaky tests failing intermittently at least this often: suggest quarantine",
    )


class TestingSettings(Section):
    __test__ = False  # not a pytest test class

    suites: dict[str, Suite] = Field(default_factory=dict)
    flaky: FlakyRules = FlakyRules()
    slowest: int = Field(10, ge=1, le=100, description="how many slowest tests to report")
    trend_runs: int = Field(5, ge=2, le=50, description="recent runs compared with the ones before")

    @field_validator("suites")
    @classmethod
    def _names(cls, value: dict[str, Suite]) -> dict[str, Suite]:
        for name in value:
            if not _SUITE_NAME.match(name):
                raise ValueError(f"suite name {name!r}: letters, digits, '_', '.', '-' (max 64)")
        return value

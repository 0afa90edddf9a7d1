"""Testing settings (``automations.testing.settings``): suites and the flaky-test rules."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class Suite(Section):
    command: list[str] = Field(min_length=1, description="argument list; no shell")
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

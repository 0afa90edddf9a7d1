"""Deployment settings (``automations.deployment.settings`` in the configuration file).

Pydantic only: cheap to import, the webhook and config validation load it.
"""

from __future__ import annotations

import datetime as dt
import re
from fnmatch import fnmatchcase
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...models import Risk, Timestamp

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Window(Section):
    """Deployments may start on these days between ``start`` and ``end`` (local time)."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: str = Field(description="HH:MM, inclusive")
    end: str = Field(description="HH:MM, exclusive; 24:00 means end of day")
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"expected HH:MM (00:00-24:00), got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (IANA name, e.g. 'Europe/Paris')") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if minutes(self.start) >= minutes(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class Freeze(Section):
    start: Timestamp
    end: Timestamp
    reason: str = "change freeze"

    @model_validator(mode="after")
    def _ordered(self) -> Freeze:
        if self.start >= self.end:
            raise ValueError("freeze start must be before its end")
        return self


PLACEHOLDERS = (
    "revision",
    "environment",
    "ref",
    "branch",
    "deployment_id",
    "repository",
    "previous_revision",
    "failed_revision",
    "url",
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


def check_argv(argv: list[str], where: str) -> None:
    """Placeholders are whole arguments: values (branch names are untrusted) are never spliced
    into a string a program might interpret (``sh -c``, ``--flag=value`` parsers)."""
    for i, arg in enumerate(argv):
        for match in _PLACEHOLDER.finditer(arg):
            name = match.group(1)
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"{where}[{i}]: unknown placeholder {{{name}}}; accepted: "
                    + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                )
            if arg != match.group(0):
                raise ValueError(
                    f"{where}[{i}]: {arg!r}: a placeholder must be a whole argument (e.g. ['--revision', "
                    f"'{{{name}}}']) or read from the ORCHESTRA_{name.upper()} environment variable"
                )


class CommandDeployerConfig(Section):
    """Runs argument lists (never a shell string). ``{revision}``, ``{environment}``, ``{ref}``,
    ``{previous_revision}`` and ``{url}`` may appear only as whole arguments."""

    type: Literal["command"]
    build: list[list[str]] = Field(default_factory=list, description="commands run before deploy")
    deploy: list[list[str]] = Field(min_length=1)
    rollback: list[list[str]] = Field(default_factory=list)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    timeout_seconds: float = Field(600, gt=0, le=86400, description="per command (seconds, <= 1 day)")
    url: str | None = Field(None, description="where the deployed service answers (for health checks)")

    @field_validator("build", "deploy", "rollback")
    @classmethod
    def _non_empty(cls, value: list[list[str]]) -> list[list[str]]:
        for i, argv in enumerate(value):
            if not argv:
                raise ValueError(
                    f"command {i} is empty; give an argument list like ['./deploy.sh', '{{revision}}']"
                )
            check_argv(argv, f"command {i}")
        return value


class CloudRunDeployerConfig(Section):
    type: Literal["cloud_run"]
    project: str
    region: str
    service: str
    image_repository: str = Field(
        description="image name without tag, e.g. europe-docker.pkg.dev/P/app/api; tag = commit"
    )
    container: str | None = Field(None, description="container name when the service has several")
    url: str | None = Field(None, description="override the service URL used for health checks")


DeployerConfig = Annotated[CommandDeployerConfig | CloudRunDeployerConfig, Field(discriminator="type")]


class ErrorRateRule(Section):
    """Fail verification when the error rate (%) after the deployment is above ``above``."""

    above: float = Field(1.0, ge=0, le=100, description="error rate in % (0..100)")
    minutes: float = Field(
        5, gt=0, le=1440, description="look at this many minutes after the deploy (<= 1 day)"
    )
    source: Literal["cloud_monitoring", "file"] = "cloud_monitoring"
    path: str | None = Field(None, description="file source: CSV timestamp,value of error rate %")

    @model_validator(mode="after")
    def _path_for_file(self) -> ErrorRateRule:
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs path")
        return self


class VerificationConfig(Section):
    path: str = "/"
    probes: int = Field(5, ge=1, le=100)
    interval_seconds: float = Field(1.0, ge=0, le=3600, description="between probes (seconds, <= 1 h)")
    timeout_seconds: float = Field(5.0, gt=0, le=600, description="per probe (seconds, <= 10 min)")
    min_success_ratio: float = Field(1.0, gt=0, le=1)
    max_latency_ms: float = Field(
        2000, gt=0, le=600_000, description="p95 of probe latency must stay below (ms, <= 10 min)"
    )
    expect_body: str | None = Field(
        None, description="the body must contain this ({revision} is replaced by the commit)"
    )
    error_rate: ErrorRateRule | None = None


class EnvironmentPolicy(Section):
    requires_approval: bool = False
    risk: Risk | None = Field(
        None, description="risk of a deployment here (default: production high, staging medium, else low)"
    )
    approval_ttl_hours: float = Field(
        72, gt=0, le=720, description="unapproved requests expire after this (hours, <= 30 days)"
    )
    windows: list[Window] = Field(default_factory=list, description="empty = any time")
    freezes: list[Freeze] = Field(default_factory=list)
    deployer: DeployerConfig | None = None
    verification: VerificationConfig = VerificationConfig()
    required_suites: list[str] = Field(
        default_factory=list, description="testing suites that must pass on the revision first"
    )
    lock_seconds: float = Field(
        1800, gt=0, le=86400, description="lease on the environment while deploying (seconds, <= 1 day)"
    )


def _default_environments() -> dict[str, EnvironmentPolicy]:
    return {
        "development": EnvironmentPolicy(),
        "staging": EnvironmentPolicy(),
        "production": EnvironmentPolicy(
            requires_approval=True,
            windows=[Window(days=["mon", "tue", "wed", "thu"], start="09:00", end="16:00")],
        ),
    }


class DeploymentSettings(Section):
    branches: dict[str, str] = Field(
        default_factory=lambda: {"main": "production", "develop": "staging"},
        description="branch (or fnmatch pattern) -> environment, first match wins",
    )
    other_branches: str | None = Field(
        "development", description="environment for branches not listed; null = do not deploy"
    )
    environments: dict[str, EnvironmentPolicy] = Field(
        default_factory=_default_environments,
        description="per-environment policy; development, staging and production keep their defaults "
        "unless listed (so configuring staging alone never drops production's approval)",
    )

    @field_validator("environments", mode="before")
    @classmethod
    def _keep_defaults(cls, value: object) -> object:
        if isinstance(value, dict):
            return {**_default_environments(), **value}
        return value

    def problems(self, known: list[str]) -> list[str]:
        """References the configuration makes to environments it does not define. The default
        branch mapping is not the configuration's word: where it names an environment the
        configuration lacks (production, staging), that branch deploys nowhere instead."""
        out = [
            f"environments.{name}: unknown environment; accepted: {', '.join(known)}"
            for name in self.environments
            if name not in known and name not in ("development", "staging", "production")
        ]
        for branch, env in self.branches.items():
            if env not in known and "branches" in self.model_fields_set:
                out.append(f"branches.{branch}: unknown environment {env!r}; accepted: {', '.join(known)}")
        if (
            self.other_branches is not None
            and self.other_branches not in known
            and "other_branches" in self.model_fields_set
        ):
            out.append(
                f"other_branches: unknown environment {self.other_branches!r}; accepted: {', '.join(known)}"
            )
        return out

    def states_environment_for(self, branch: str) -> bool:
        """Whether the configuration itself (not a default) decides where ``branch`` deploys."""
        mapped = branch in self.branches or any(fnmatchcase(branch, p) for p in self.branches)
        return "branches" in self.model_fields_set if mapped else "other_branches" in self.model_fields_set

    def environment_for_branch(self, branch: str) -> str | None:
        if branch in self.branches:
            return self.branches[branch]
        for pattern, env in self.branches.items():
            if fnmatchcase(branch, pattern):
                return env
        return self.other_branches

    def policy(self, environment: str) -> EnvironmentPolicy:
        return self.environments.get(environment) or EnvironmentPolicy()

    def risk(self, environment: str) -> Risk:
        configured = self.policy(environment).risk
        if configured is not None:
            return configured
        return {"production": Risk.high, "staging": Risk.medium}.get(environment, Risk.low)


def weekday_name(when: dt.datetime) -> str:
    return DAYS[when.weekday()]

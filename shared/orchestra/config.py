"""Configuration: one YAML file, validated by pydantic before anything runs.

Unknown keys are errors everywhere (a typo must never be silently ignored). Every problem is
reported as ``path.to.field: what is wrong``; the CLI exits with code 2 on a bad file.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .models import TASK_NAMES, Risk

CONFIG_ENV_VAR = "CONFIG_PATH"
# libyaml's loader when PyYAML was built with it: parsing is on every CLI call and cold start.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TaskName = Literal[TASK_NAMES]  # type: ignore[valid-type]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvironmentConfig(Section):
    automation_level: int = Field(1, ge=0, le=3, description="default level when a trigger gives none")
    max_automation_level: int = Field(3, ge=0, le=3, description="a trigger can never exceed this")
    approval_required_risk: Risk | None = Field(
        None,
        description="actions at or above this risk wait for approval (high is always gated in production)",
    )
    protected: bool = Field(False, description="production-like: high-risk actions always need approval")


class ThresholdRule(Section):
    metric: Literal["cpu", "memory", "latency_p95", "error_rate", "request_count"]
    above: float
    for_minutes: float = Field(ge=0)
    environments: list[str] | None = Field(None, description="only these environments (None = all)")
    focus: str = Field(description="what the focused run optimizes: cpu, memory, latency, errors")


class AutomationConfig(Section):
    enabled: bool = True
    schedule: str | None = Field(None, description="cron expression (UTC) for scheduled runs")
    environments: list[str] | None = Field(None, description="scheduled runs target these environments")
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r} (e.g. '0 2 * * *')")
        return value


class RetryConfig(Section):
    attempts: int = Field(3, ge=1, le=3, description="in-process attempts for transient errors (SRE: <= 3)")
    initial_seconds: float = Field(0.5, gt=0)
    max_seconds: float = Field(8.0, gt=0)
    max_deliveries: int = Field(
        5, ge=1, description="executions across redeliveries before a run is failed for good"
    )


class BreakerConfig(Section):
    failure_threshold: int = Field(3, ge=1, description="consecutive failures that open the breaker")
    window_seconds: float = Field(3600, gt=0, description="failures older than this do not count")
    open_seconds: float = Field(300, gt=0, description="time open before a half-open probe")
    probe_lease_seconds: float = Field(600, gt=0, description="how long one probe holds half-open")


class LeaseConfig(Section):
    seconds: float = Field(120, gt=0, description="lease length; an expired lease means the owner died")
    heartbeat_seconds: float = Field(30, gt=0)
    on_expiry: Literal["retry", "fail"] = "retry"

    @model_validator(mode="after")
    def _heartbeat_shorter(self) -> LeaseConfig:
        if self.heartbeat_seconds >= self.seconds:
            raise ValueError("heartbeat_seconds must be shorter than seconds")
        return self


class RetentionConfig(Section):
    runs_days: int = Field(30, ge=1)
    events_days: int = Field(14, ge=1)
    dead_letters_days: int = Field(30, ge=1)


class RunnerConfig(Section):
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    lease: LeaseConfig = LeaseConfig()
    approval_ttl_hours: float = Field(24, gt=0)
    retention: RetentionConfig = RetentionConfig()


class Config(Section):
    store: str = Field("sqlite:///.orchestra/state.db", description="overridden by ORCHESTRA_STORE")
    default_environment: str = "development"
    environments: dict[str, EnvironmentConfig]
    thresholds: dict[str, ThresholdRule] = Field(default_factory=dict)
    automations: dict[TaskName, AutomationConfig] = Field(default_factory=dict)
    runner: RunnerConfig = RunnerConfig()

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = []
        if self.default_environment not in self.environments:
            problems.append(f"default_environment: {self.default_environment!r} is not in environments")
        for name, rule in self.thresholds.items():
            for env in rule.environments or []:
                if env not in self.environments:
                    problems.append(f"thresholds.{name}.environments: unknown environment {env!r}")
        for name, auto in self.automations.items():
            for env in auto.environments or []:
                if env not in self.environments:
                    problems.append(f"automations.{name}.environments: unknown environment {env!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                "--environment", [f"environment: unknown {name!r}; accepted: {', '.join(self.environments)}"]
            ) from None

    def automation(self, name: str) -> AutomationConfig:
        return self.automations.get(name) or AutomationConfig()


def default_config_text() -> str:
    return resources.files("orchestra").joinpath("defaults/config.yaml").read_text()


def default_config_path() -> Path:
    return Path(str(resources.files("orchestra").joinpath("defaults/config.yaml")))


def format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        parts = [str(p) for p in err["loc"] if p not in ("function-after", "function-before")]
        is_key = "[key]" in parts
        loc = ".".join(p for p in parts if p != "[key]")
        path = ".".join(p for p in (prefix, loc) if p) or "(top level)"
        message = err["msg"]
        if is_key and err["type"] == "literal_error":
            message = f"unknown name {err['input']!r}; accepted: {err['ctx']['expected']}"
        elif err["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{path}: {message}")
    return lines


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(source, [f"(yaml) {where}: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of sections"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_errors(exc)) from None
    problems = validate_automation_settings(config)
    if problems:
        raise ConfigError(source, problems)
    return config


def validate_automation_settings(config: Config) -> list[str]:
    """Each automation declares a settings model; check configured settings against it."""
    from .registry import registry

    problems: list[str] = []
    for name, auto in config.automations.items():
        plugin = registry.get_class(name)
        if plugin is None:
            if auto.settings:
                problems.append(f"automations.{name}.settings: automation {name!r} is not available yet")
            continue
        try:
            plugin.Settings.model_validate(auto.settings)
        except ValidationError as exc:
            problems.extend(format_errors(exc, prefix=f"automations.{name}.settings"))
    return problems


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        return Path(env)
    return default_config_path()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    resolved = resolve_config_path(path)
    try:
        text = resolved.read_text()
    except FileNotFoundError:
        raise ConfigError(str(resolved), ["(file): not found"]) from None
    except OSError as exc:
        raise ConfigError(str(resolved), [f"(file): cannot read: {exc.strerror}"]) from None
    return parse_config(text, str(resolved))


def automation_settings(config: Config, name: str) -> BaseModel:
    from .registry import registry

    plugin = registry.get_class(name)
    if plugin is None:
        raise ConfigError("automations", [f"{name}: automation is not available"])
    return plugin.Settings.model_validate(config.automation(name).settings)

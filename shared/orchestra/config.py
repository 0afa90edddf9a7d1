"""Configuration: one YAML file, validated by pydantic before anything runs.

Unknown keys are errors everywhere (a typo must never be silently ignored). Every problem is
reported as ``path.to.field: what is wrong``; the CLI exits with code 2 on a bad file.

Every number has a finite range an operator would recognise (no infinities, no NaN, no value
that overflows a date or a duration later in a run), every cron expression has the five
standard fields, and the text itself goes through :mod:`orchestra.yamlsafe` (size, encoding,
control characters, nesting, alias expansion and tags) before the YAML parser builds anything.

Automations' settings are checked by each automation's own Settings model once the registry
knows the automations (:meth:`orchestra.registry.Registry.check_config`); the configuration then
holds the typed models (:meth:`Config.settings_for`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import yamlsafe
from .errors import ConfigError, InputError
from .models import Risk

CONFIG_ENV_VAR = "CONFIG_PATH"
SettingsT = TypeVar("SettingsT", bound=BaseModel)
MAX_CONFIG_BYTES = yamlsafe.MAX_CONFIG_BYTES

HOUR = 3600
DAY = 24 * HOUR
GIB = 1024**3

# ---------------------------------------------------------------------------------- cron

CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_CRON_MAX_CHARS = 200
_CRON_FIELD = re.compile(r"^[0-9a-z*,/\-]+$")
_CRON_NAMES = {
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "day-of-week": ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
}
_CRON_WORD = re.compile(r"[a-z]+")
# Whether an expression ever fires is checked from a fixed date, so validation is deterministic.
_CRON_PROBE_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def check_cron(value: str) -> str:
    """A standard five-field cron expression (minute hour day-of-month month day-of-week, UTC) as
    Cloud Scheduler and the controller read it; raises ValueError saying what is accepted.

    croniter alone also accepts seconds and years fields, ``@daily`` macros and ``L``/``#``/``?``
    forms, which Cloud Scheduler refuses and which would shift every slot: all are refused here,
    as are expressions that never fire (the 31st of February)."""
    accepted = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"

    def invalid(reason: str) -> ValueError:
        return ValueError(f"not a valid cron expression: {reason}; accepted: {accepted}")

    if len(value) > _CRON_MAX_CHARS:
        raise invalid(f"longer than {_CRON_MAX_CHARS} characters")
    fields = value.split()
    if len(fields) != len(CRON_FIELDS):
        raise invalid(f"{value!r} has {len(fields)} fields, expected exactly 5")
    for name, field in zip(CRON_FIELDS, fields, strict=True):
        lowered = field.lower()
        if not _CRON_FIELD.match(lowered):
            raise invalid(f"{name} field {field!r} may hold only digits, '*', ',', '-', '/' and names")
        words = _CRON_WORD.findall(lowered)
        if words and any(word not in _CRON_NAMES.get(name, ()) for word in words):
            names = ", ".join(_CRON_NAMES.get(name, ())) or "none (numbers only)"
            raise invalid(f"{name} field {field!r}: names accepted there: {names}")
    # Imported here: a function's cold start reads a configuration without schedules to check.
    from croniter import croniter
    from croniter.croniter import CroniterError

    try:
        valid = croniter.is_valid(value)
    except (CroniterError, ValueError, TypeError, KeyError, IndexError, OverflowError):
        valid = False
    if not valid:
        raise invalid(f"{value!r} (a value out of range?)")
    try:
        croniter(value, _CRON_PROBE_START).get_next(dt.datetime)
    except (CroniterError, ValueError, OverflowError):
        raise invalid(f"{value!r} never fires (no such date)") from None
    return value


class Section(BaseModel):
    # Built on first use (a cold start validates few sections; see orchestra.models.Strict).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)


GROUP_PREFIX = "group:"


MAX_VERIFICATION_WINDOW_MINUTES = 7 * 24 * 60


class VerificationPolicy(Section):
    """How long an applied change whose verification cannot tell yet (``inconclusive``: no samples
    after it, no baseline) is re-checked, and what happens when the window ends undecided."""

    window_minutes: float = Field(
        60,
        ge=0,
        le=MAX_VERIFICATION_WINDOW_MINUTES,
        description="minutes after the change during which an inconclusive verification is checked "
        "again (0..10080; 0: the policy decides at once)",
    )
    on_inconclusive: Literal["rollback", "accept"] | None = Field(
        None,
        description="still inconclusive when the window ends: rollback undoes the change, accept "
        "keeps it; unset: rollback in a protected environment, accept elsewhere",
    )


class EnvironmentConfig(Section):
    automation_level: int = Field(1, ge=0, le=3, description="default level when a trigger gives none")
    max_automation_level: int = Field(3, ge=0, le=3, description="a trigger can never exceed this")
    approval_required_risk: Risk | None = Field(
        None,
        description="actions at or above this risk wait for approval (high is always gated in production)",
    )
    protected: bool = Field(False, description="production-like: high-risk actions always need approval")
    approvers: list[str] | None = Field(
        None,
        description="when set, only these people (e-mails) or groups ('group:<e-mail>' entries, "
        "members from the top-level groups) may approve in this environment; None: anyone but the "
        "requester",
    )
    verification: VerificationPolicy = Field(
        default_factory=VerificationPolicy,
        description="re-checking changes whose verification is inconclusive (window and policy)",
    )

    @model_validator(mode="after")
    def _inconclusive_default(self) -> EnvironmentConfig:
        if self.verification.on_inconclusive is None:
            decided = "rollback" if self.protected else "accept"
            self.verification = self.verification.model_copy(update={"on_inconclusive": decided})
        return self

    @property
    def on_inconclusive(self) -> Literal["rollback", "accept"]:
        """What an inconclusive verification ends in when its window ends."""
        return self.verification.on_inconclusive or ("rollback" if self.protected else "accept")

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: list[str] | None) -> list[str] | None:
        for i, entry in enumerate(value or []):
            name = entry[len(GROUP_PREFIX) :] if entry.startswith(GROUP_PREFIX) else entry
            if not name.strip():
                raise ValueError(f"entry {i} is empty; give an e-mail or 'group:<e-mail>'")
        return value


# Where each metric's threshold may lie: (lowest, lowest included, highest, highest included, unit).
METRIC_RANGES: dict[str, tuple[float, bool, float, bool, str]] = {
    "cpu": (0, False, 100, False, "% of the CPU limit"),
    "memory": (0, False, 100, False, "% of the memory limit"),
    "error_rate": (0, True, 100, False, "% of requests"),
    "latency_p95": (0, False, 3_600_000, True, "ms (Cloud Run's longest request timeout is 60 min)"),
    "request_count": (0, True, 1e9, True, "requests per alignment interval"),
}
MAX_FOR_MINUTES = 1440


class ThresholdRule(Section):
    metric: Literal["cpu", "memory", "latency_p95", "error_rate", "request_count"]
    above: float = Field(
        description="alert above this value: cpu and memory 0 < above < 100 (%), error_rate "
        "0 <= above < 100 (%), latency_p95 0 < above <= 3600000 (ms), request_count 0..1e9"
    )
    for_minutes: float = Field(
        gt=0, le=MAX_FOR_MINUTES, description="sustained this long (minutes, at most a day)"
    )
    environments: list[str] | None = Field(None, description="only these environments (None = all)")
    focus: str = Field(description="what the focused run optimizes: cpu, memory, latency, errors")

    @field_validator("above")
    @classmethod
    def _in_metric_range(cls, value: float, info: ValidationInfo) -> float:
        metric = info.data.get("metric")
        if metric not in METRIC_RANGES:
            return value  # the metric itself is reported
        low, low_in, high, high_in, unit = METRIC_RANGES[metric]
        if (value < low or (value == low and not low_in)) or (
            value > high or (value == high and not high_in)
        ):
            lower = "<=" if low_in else "<"
            upper = "<=" if high_in else "<"
            raise ValueError(
                f"{value:g} is outside the {metric} range {low:g} {lower} above {upper} {high:g} {unit}"
            )
        return value


class AutomationConfig(Section):
    enabled: bool = True
    schedule: str | None = Field(
        None, description="cron expression (UTC, exactly 5 fields: minute hour day month weekday)"
    )
    environments: list[str] | None = Field(None, description="scheduled runs target these environments")
    alert_after_minutes: int | None = Field(
        None,
        ge=2,
        le=527040,
        description="Cloud Monitoring alerts when no run succeeded for this long (2 minutes..366 days); "
        "default: twice the schedule's interval",
    )
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)


class RetryConfig(Section):
    attempts: int = Field(3, ge=1, le=3, description="in-process attempts for transient errors (SRE: <= 3)")
    initial_seconds: float = Field(0.5, gt=0, le=HOUR, description="first backoff cap (seconds, <= 1 h)")
    max_seconds: float = Field(8.0, gt=0, le=HOUR, description="largest backoff (seconds, <= 1 h)")
    max_deliveries: int = Field(
        5,
        ge=1,
        le=100,
        description="executions across redeliveries before a run is failed for good (1..100, "
        "Pub/Sub's dead-letter limit)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.initial_seconds > self.max_seconds:
            raise ValueError("initial_seconds must not be larger than max_seconds")
        return self


class BreakerConfig(Section):
    failure_threshold: int = Field(
        3, ge=1, le=1000, description="consecutive failures that open the breaker (1..1000)"
    )
    window_seconds: float = Field(
        HOUR, gt=0, le=7 * DAY, description="failures older than this do not count (<= 7 days)"
    )
    open_seconds: float = Field(
        300, gt=0, le=DAY, description="time open before a half-open probe (<= 1 day)"
    )
    probe_lease_seconds: float = Field(
        600, gt=0, le=DAY, description="how long one probe holds half-open (<= 1 day)"
    )
    cache_seconds: float = Field(
        5,
        ge=0,
        le=60,
        description=(
            "how long an instance trusts a breaker it read closed with no failures (0..60; 0 reads "
            "it before every run): a breaker opened elsewhere is honoured within this time"
        ),
    )


class LeaseConfig(Section):
    seconds: float = Field(
        120, gt=0, le=DAY, description="lease length; an expired lease means the owner died (<= 1 day)"
    )
    heartbeat_seconds: float = Field(30, gt=0, le=DAY, description="lease renewal interval, below seconds")
    on_expiry: Literal["retry", "fail"] = "retry"
    claim_after_seconds: float = Field(
        2,
        gt=0,
        le=DAY,
        description="a run of an automation whose analysis only reads is claimed (stored running, "
        "under a lease) before its first change, or once it has lasted this long",
    )

    @model_validator(mode="after")
    def _heartbeat_shorter(self) -> LeaseConfig:
        if self.heartbeat_seconds >= self.seconds:
            raise ValueError("heartbeat_seconds must be shorter than seconds")
        return self


MAX_RETENTION_DAYS = 3650


class RetentionConfig(Section):
    runs_days: int = Field(
        30, ge=1, le=MAX_RETENTION_DAYS, description="run history kept (days, <= 10 years)"
    )
    events_days: int = Field(14, ge=1, le=MAX_RETENTION_DAYS, description="event records kept (days)")
    dead_letters_days: int = Field(30, ge=1, le=MAX_RETENTION_DAYS, description="dead letters kept (days)")


class RunnerConfig(Section):
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    lease: LeaseConfig = LeaseConfig()
    approval_ttl_hours: float = Field(
        24, gt=0, le=720, description="approvals expire after (hours, <= 30 days)"
    )
    retention: RetentionConfig = RetentionConfig()


class InputsConfig(Section):
    """Input files: where remote triggers may name them, and how large any may be."""

    allowed_dirs: list[str] = Field(
        default_factory=list,
        description="absolute directories remote triggers (HTTP, Pub/Sub, webhooks) may name input "
        "files in; empty: remote triggers name no local files",
    )
    max_bytes: int = Field(
        512 * 1024**2,
        ge=1,
        le=64 * GIB,
        description="largest input file any automation reads (bytes, 1..64 GiB)",
    )

    @field_validator("allowed_dirs")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        for i, entry in enumerate(value):
            if not PurePosixPath(entry).is_absolute():
                raise ValueError(f"entry {i} ({entry!r}) is not an absolute path; e.g. /srv/orchestra/inputs")
        return value


TOPIC_PATTERN = r"^(projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/)?[A-Za-z][A-Za-z0-9._~+%-]{2,254}$"


class EventsConfig(Section):
    """Announcements (runs finished, approvals awaited, deployments, breakers, dead letters):
    always one log line each; also published as CloudEvents to ``topic`` when it is set."""

    topic: str | None = Field(
        None,
        pattern=TOPIC_PATTERN,
        description="Pub/Sub topic (name or projects/P/topics/T) announcements are published to; "
        "overridden by ORCHESTRA_EVENTS_TOPIC; unset: the log line only",
    )
    publish_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="longest a publish may hold up the caller (seconds, <= 30)"
    )


class AutomationCatalog(Protocol):
    """The automations a configuration may name (an :class:`orchestra.registry.Registry`)."""

    def names(self) -> list[str]: ...

    def __contains__(self, name: object) -> bool: ...


# The validation context key under which parse_config passes the catalog of automations.
AUTOMATIONS_CONTEXT = "orchestra.automations"


def registered_automation(name: str, info: ValidationInfo) -> str:
    """A key of ``automations``: the name of an automation in the catalog the caller passed
    (:func:`parse_config`'s ``automations``); any name when it passed none."""
    catalog = (info.context or {}).get(AUTOMATIONS_CONTEXT)
    if catalog is not None and name not in catalog:
        accepted = ", ".join(catalog.names()) or "none registered"
        raise ValueError(f"unknown automation {name!r}; accepted: {accepted}")
    return name


AutomationName = Annotated[str, AfterValidator(registered_automation)]


class Config(Section):
    store: str = Field("sqlite:///.orchestra/state.db", description="overridden by ORCHESTRA_STORE")
    default_environment: str = "development"
    environments: dict[str, EnvironmentConfig]
    thresholds: dict[str, ThresholdRule] = Field(default_factory=dict)
    automations: dict[AutomationName, AutomationConfig] = Field(
        default_factory=dict,
        description="per automation, by its registered name; its settings are checked by that "
        "automation's Settings model (see :meth:`Config.settings_for`)",
    )
    runner: RunnerConfig = RunnerConfig()
    inputs: InputsConfig = InputsConfig()
    events: EventsConfig = EventsConfig()
    identities: dict[str, str] = Field(
        default_factory=dict,
        description="external identity ('github:alice': a GitHub login or pusher name) -> that "
        "person's e-mail; approvals compare people through it",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group e-mail -> member e-mails (for environments.*.approvers)"
    )

    @field_validator("identities")
    @classmethod
    def _identities(cls, value: dict[str, str]) -> dict[str, str]:
        for key, email in value.items():
            prefix, sep, name = key.partition(":")
            if not sep or not prefix.strip() or not name.strip():
                raise ValueError(f"key {key!r}: expected KIND:NAME, e.g. 'github:alice'")
            if not email.strip():
                raise ValueError(f"{key}: the e-mail is empty")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for group, members in value.items():
            if not group.strip():
                raise ValueError("a group name is empty; groups are named by their e-mail")
            for i, member in enumerate(members):
                if not member.strip():
                    raise ValueError(f"{group}: member {i} is empty")
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = []
        for name, env_config in self.environments.items():
            for entry in env_config.approvers or []:
                if entry.startswith(GROUP_PREFIX) and entry[len(GROUP_PREFIX) :] not in self.groups:
                    configured = ", ".join(self.groups) or "none configured"
                    problems.append(
                        f"environments.{name}.approvers: {entry!r} names no group in groups ({configured})"
                    )
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

    # Each automation's settings as its typed Settings model, validated once: when the registry
    # checks the loaded configuration (orchestra.registry.Registry.check_config), else on first use.
    # Kept with the raw block it was validated from: a block replaced since is validated again.
    _settings: dict[str, tuple[dict[str, Any], BaseModel]] = PrivateAttr(default_factory=dict)

    def automation(self, name: str) -> AutomationConfig:
        return self.automations.get(name) or AutomationConfig()

    def settings_for(self, name: str, model: type[SettingsT]) -> SettingsT:
        """``automations.<name>.settings`` as ``model`` (the automation's Settings class):
        the instance validated when the configuration was checked, or validated now and kept.
        An automation the configuration does not list gets the model's defaults.

        Raises :class:`ConfigError` naming each field at fault under
        ``automations.<name>.settings``."""
        raw = self.automation(name).settings
        held = self._settings.get(name)
        # An unlisted automation's block is a new empty mapping on each call: empty is empty.
        if held is not None and type(held[1]) is model and (held[0] is raw or not (held[0] or raw)):
            return held[1]  # type: ignore[return-value]
        try:
            value = model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(
                "automations", format_errors(exc, prefix=f"automations.{name}.settings")
            ) from None
        self._settings[name] = (raw, value)
        return value


def default_config_text() -> str:
    return resources.files("orchestra").joinpath("defaults/config.yaml").read_text()


def default_config_path() -> Path:
    return Path(str(resources.files("orchestra").joinpath("defaults/config.yaml")))


def printable(line: str) -> str:
    """``line`` with line breaks and other unprintable characters escaped (as in a Python string
    literal): each problem stays one line whatever the keys and values in the file."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


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
        lines.append(printable(f"{path}: {message}"))
    return lines


def parse_config(
    text: str | bytes, source: str = "<config>", *, automations: AutomationCatalog | None = None
) -> Config:
    """Configuration text (or the file's bytes) to a validated :class:`Config`, or
    :class:`ConfigError` listing every problem with its field path or line and column.

    Each key of ``automations`` must name an automation of the ``automations`` catalog when one
    is given (reported with the other problems). The settings of each are checked by the
    registry that runs them (:meth:`orchestra.registry.Registry.check_config`, which
    :func:`orchestra.app.load_config` calls): this module knows no automation."""
    try:
        data = yamlsafe.load(text, source=source, max_bytes=MAX_CONFIG_BYTES)
    except yamlsafe.YamlTextError as exc:
        # "(yaml) line L, column C: ..." for a place in the text, "(file): ..." for the whole file.
        where = "(file):" if exc.line is None else "(yaml)"
        raise ConfigError(source, [printable(f"{where} {exc.detail}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of sections"])
    try:
        config = Config.model_validate(data, context={AUTOMATIONS_CONTEXT: automations})
    except ValidationError as exc:
        raise ConfigError(source, format_errors(exc)) from None
    return config


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        return Path(env)
    return default_config_path()


def load_config(
    path: str | os.PathLike[str] | None = None, *, automations: AutomationCatalog | None = None
) -> Config:
    from .inputs import open_input

    resolved = resolve_config_path(path)
    try:
        # A regular file only (a FIFO or device would block or never end), and one byte more
        # than the limit is enough to know it is too large: never read whole.
        with open_input(resolved, max_bytes=1 << 62, where="(file)") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except InputError as exc:
        raise ConfigError(str(resolved), [str(exc)]) from None
    return parse_config(data, str(resolved), automations=automations)

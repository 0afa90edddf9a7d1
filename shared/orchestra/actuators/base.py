"""Cloud Run service settings that the automations change, and the actuator port.

``ServiceConfig`` is the slice of a Cloud Run service we reason about: vCPU and memory limits of
the serving container, request concurrency, min/max instances, startup CPU boost and the billing
mode (``cpu_idle``: CPU only during requests, i.e. request-based billing). The
validity rules are Cloud Run's, kept in one table with their sources: :mod:`.rules`.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, OrchestraError
from . import rules
from .rules import CloudRunLimits, ServiceFacts

VCPU_STEPS: tuple[int, ...] = rules.CPU_STEPS
MEMORY_CAP_MIB: dict[int, int] = rules.MEMORY_CAP_MIB
MEMORY_FLOOR_MIB: dict[int, int] = rules.MEMORY_FLOOR_MIB
# Sizes recommendations choose from (128 and 256 MiB only where the execution environment allows).
MEMORY_STEPS_MIB: tuple[int, ...] = rules.MEMORY_STEPS_MIB
MAX_MEMORY_MIB = 32768
CONCURRENCY_MAX = 1000
DEFAULT_CONCURRENCY = 80
DEFAULT_MAX_INSTANCES = 100

CHANGE_FIELDS = (
    "cpu",
    "memory_mib",
    "concurrency",
    "min_instances",
    "max_instances",
    "startup_cpu_boost",
    "cpu_idle",
)


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(1, description="vCPU limit of the serving container")
    memory_mib: int = Field(512, description="memory limit of the serving container, MiB")
    concurrency: int = Field(DEFAULT_CONCURRENCY, description="max concurrent requests per instance")
    min_instances: int = 0
    max_instances: int = DEFAULT_MAX_INSTANCES
    startup_cpu_boost: bool = False
    cpu_idle: bool = Field(
        True,
        description="CPU allocated only while requests are handled (request-based billing, the "
        "default); false: CPU always allocated (instance-based billing)",
    )

    def with_changes(self, changes: dict[str, Any]) -> ServiceConfig:
        unknown = set(changes) - set(CHANGE_FIELDS)
        if unknown:
            raise InputError(f"unknown setting(s) {sorted(unknown)}; accepted: {', '.join(CHANGE_FIELDS)}")
        return ServiceConfig.model_validate({**self.model_dump(), **changes})

    def diff(self, other: ServiceConfig) -> dict[str, Any]:
        """Fields whose value in ``other`` differs from this one (other's values)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return {k: theirs[k] for k in CHANGE_FIELDS if mine[k] != theirs[k]}


def min_cpu_for_memory(memory_mib: int) -> int | None:
    """The least whole vCPU that accepts ``memory_mib`` (None above 32 GiB)."""
    found = rules.min_cpu_for_memory(memory_mib, fractional=False)
    return None if found is None else int(found)


def problems(
    config: ServiceConfig, facts: ServiceFacts | None = None, limits: CloudRunLimits | None = None
) -> list[str]:
    """Why a configuration would be rejected (Cloud Run's rules, :mod:`.rules`); empty when valid."""
    return rules.violations(config, facts, limits)


def make_valid(
    config: ServiceConfig, facts: ServiceFacts | None = None, limits: CloudRunLimits | None = None
) -> ServiceConfig:
    """The nearest valid configuration that never lowers capacity (:func:`.rules.fit`, judged
    against the configuration itself)."""
    return rules.fit(config, config, facts or ServiceFacts(), limits or CloudRunLimits())


_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_MEMORY_UNITS = {
    "": 1 / (1024 * 1024),
    "k": 1000 / 1024**2,
    "K": 1000 / 1024**2,
    "Ki": 1 / 1024,
    "M": 1000**2 / 1024**2,
    "Mi": 1,
    "G": 1000**3 / 1024**2,
    "Gi": 1024,
    "T": 1000**4 / 1024**2,
    "Ti": 1024**2,
}


def parse_cpu(text: str | int | float, where: str) -> float:
    """Kubernetes CPU quantity: '1', '2', '1000m', '0.5'."""
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in ("", "m"):
        raise InputError(f"bad CPU quantity {text!r}; accepted: '1', '2', '4', '1000m'", where=where)
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "m" else value


def format_cpu(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(round(cpu * 1000))}m"


def parse_memory(text: str | int, where: str) -> int:
    """Kubernetes memory quantity to MiB: '512Mi', '1Gi', '2G', '536870912'."""
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise InputError(f"bad memory quantity {text!r}; accepted e.g. '512Mi', '2Gi', '1G'", where=where)
    return int(math.ceil(float(match.group(1)) * _MEMORY_UNITS[match.group(2)] - 1e-9))


def format_memory(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


class ConflictError(OrchestraError):
    """The target changed since we applied: undoing would overwrite someone else's change."""


class Actuator(ABC):
    """Reads and changes one Cloud Run service's settings. Rollback data is plain JSON.

    ``limits`` are the project's quotas the rules check a change against (the automations set
    them from ``settings.cloud_run_limits``)."""

    limits: CloudRunLimits = CloudRunLimits()

    def read_facts(self) -> ServiceFacts:
        """What the rules need besides the settings (environment, Direct VPC, service-level
        scaling); targets that cannot tell say nothing."""
        return ServiceFacts()

    def preview(self, changes: dict[str, Any]) -> str | None:
        """The change as a bounded unified diff of what would be written; None when the target
        has no text to show."""
        return None

    @abstractmethod
    def target(self) -> dict[str, Any]:
        """JSON that ``actuator_from_target`` turns back into this actuator."""

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def service_name(self) -> str | None:
        """The Cloud Run service this target changes; None when the target does not name one."""

    @abstractmethod
    def read(self) -> ServiceConfig: ...

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Everything needed to restore the current state (stored before apply)."""

    @abstractmethod
    def apply(self, changes: dict[str, Any]) -> ServiceConfig:
        """Set absolute values (idempotent); refuses to produce an invalid configuration."""

    @abstractmethod
    def restore(self, snapshot: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Undo ``apply(changes)`` from ``snapshot``; safe to call twice. Returns evidence."""


def check_changes(
    current: ServiceConfig,
    changes: dict[str, Any],
    where: str,
    facts: ServiceFacts | None = None,
    limits: CloudRunLimits | None = None,
) -> ServiceConfig:
    updated = current.with_changes(changes)
    # A setting the platform already runs with is not ours to reject; only problems this change
    # would introduce are.
    found = rules.new_violations(current, updated, facts, limits)
    if found:
        raise InputError(
            f"refusing to write an invalid Cloud Run configuration: {'; '.join(found)}", where=where
        )
    return updated


def actuator_from_target(target: dict[str, Any], *, run_client: Any = None) -> Actuator:
    kind = target.get("type")
    if kind == "cloud-run-yaml":
        from .cloud_run_yaml import CloudRunYamlActuator

        return CloudRunYamlActuator(target["path"])
    if kind == "cloud-run-admin":
        from .cloud_run_admin import CloudRunAdminActuator

        return CloudRunAdminActuator(target["name"], client=run_client)
    raise InputError(
        f"unknown actuator type {kind!r}; accepted: cloud-run-yaml, cloud-run-admin", where="target"
    )

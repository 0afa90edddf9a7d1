"""Actuators: change a Cloud Run service's settings, with rollback data (YAML file, Admin API)."""

from .base import (
    CHANGE_FIELDS,
    MEMORY_CAP_MIB,
    MEMORY_STEPS_MIB,
    VCPU_STEPS,
    Actuator,
    ConflictError,
    ServiceConfig,
    actuator_from_target,
    format_cpu,
    format_memory,
    make_valid,
    problems,
)

__all__ = [
    "CHANGE_FIELDS",
    "MEMORY_CAP_MIB",
    "MEMORY_STEPS_MIB",
    "VCPU_STEPS",
    "Actuator",
    "ConflictError",
    "ServiceConfig",
    "actuator_from_target",
    "format_cpu",
    "format_memory",
    "make_valid",
    "problems",
]

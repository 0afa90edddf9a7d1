"""Cloud Run changes across the valid space of services: inside the rules, never below observed
usage, only the changed bytes of the owner's file, rollback to the original bytes.

Services are drawn over vCPU (fractional included), memory, concurrency, revision- and
service-level min/max instances, Direct VPC egress, execution environment and billing mode, and
their YAML over comment, quoting, flow/block and block-scalar styles; metrics over levels and
shapes. Performance, infrastructure and cost planning run on each, and every change is applied
to the file and rolled back.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orchestra.actuators import rules
from orchestra.actuators.base import ServiceConfig, format_cpu, format_memory
from orchestra.actuators.cloud_run_yaml import CloudRunYamlActuator
from orchestra.actuators.rules import CloudRunLimits, ObservedUsage, ServiceFacts
from orchestra.automations.cost import RunService, WasteSettings
from orchestra.automations.cost.waste import TargetState, rightsize
from orchestra.automations.infrastructure.engine import _scaling_changes
from orchestra.automations.performance.episodes import find_episodes
from orchestra.automations.performance.models import PerformanceSettings
from orchestra.automations.performance.recommend import (
    Inputs,
    RuleResult,
    observed_usage,
    plan,
    recommend,
)
from orchestra.config import default_config_text, parse_config
from orchestra.metrics.base import MetricSeries, make_series

THRESHOLDS = parse_config(default_config_text()).thresholds
LIMITS = CloudRunLimits(
    direct_vpc_max_instances=100, regional_vcpu_quota=1000, regional_memory_gib_quota=2000
)
# Lines an edit may touch: the changed fields, the parents it may create, the revision name.
EDITABLE = re.compile(
    r"cpu:|memory:|containerConcurrency:|minScale|maxScale|cpu-throttling|startup-cpu-boost|"
    r"^\s*(metadata|annotations|resources|limits):|^\s*name: svc-0000"
)
FRACTIONAL_CPUS = (0.08, 0.1, 0.25, 0.333, 0.5, 0.75, 0.999)
MEMORIES = (128, 256, 384, 512, 768, 1024, 2048, 3072, 4096, 6144, 8192, 16384, 24576, 32768)


@st.composite
def services(draw: st.DrawFn) -> tuple[ServiceConfig, ServiceFacts]:
    env = draw(st.sampled_from([None, "gen1", "gen2"]))
    cpu_idle = draw(st.booleans())
    fractional = draw(st.booleans()) and cpu_idle and env != "gen2"
    cpu = (
        draw(st.sampled_from(FRACTIONAL_CPUS))
        if fractional
        else float(draw(st.sampled_from(rules.CPU_STEPS)))
    )
    facts = ServiceFacts(
        execution_environment=env,
        direct_vpc=draw(st.booleans()),
        service_max_instances=draw(st.none() | st.integers(1, 300)),
    )
    low, high = rules.memory_min_mib(cpu, facts), rules.memory_cap_mib(cpu)
    memory = draw(st.sampled_from([m for m in MEMORIES if low <= m <= high]))
    concurrency = 1 if fractional else draw(st.sampled_from([1, 2, 10, 80, 250, 1000]))
    probe = ServiceConfig(cpu=cpu, memory_mib=memory, concurrency=concurrency, cpu_idle=cpu_idle)
    cap = rules.scale_cap(probe, facts, LIMITS, ceiling=1000)
    max_instances = draw(st.integers(1, cap))
    min_instances = draw(st.integers(0, min(max_instances, 20)))
    if facts.service_max_instances is not None:
        facts = facts.model_copy(
            update={"service_min_instances": draw(st.none() | st.integers(0, min_instances))}
        )
    config = probe.model_copy(
        update={
            "min_instances": min_instances,
            "max_instances": max_instances,
            "startup_cpu_boost": draw(st.booleans()),
        }
    )
    assert rules.violations(config, facts, LIMITS) == []
    return config, facts


@st.composite
def documents(draw: st.DrawFn, config: ServiceConfig, facts: ServiceFacts) -> str:
    """The service as an owner might have written it: comments, mixed quoting, a block scalar,
    an environment value that only quoting keeps a string, flow or block limits."""
    q = draw(st.sampled_from(["'", '"']))

    def quote(text: str) -> str:
        return f"{q}{text}{q}"

    comment = draw(st.booleans())
    service_annotations = []
    if facts.service_max_instances is not None:
        service_annotations.append(
            f"    run.googleapis.com/maxScale: {quote(str(facts.service_max_instances))}"
        )
    if facts.service_min_instances is not None:
        service_annotations.append(
            f"    run.googleapis.com/minScale: {quote(str(facts.service_min_instances))}"
        )
    annotations = []
    if config.max_instances != 100 or draw(st.booleans()):
        annotations.append(f"        autoscaling.knative.dev/maxScale: {quote(str(config.max_instances))}")
    if config.min_instances or draw(st.booleans()):
        line = f"        autoscaling.knative.dev/minScale: {quote(str(config.min_instances))}"
        annotations.append(line + ("  # keep warm" if comment else ""))
    if facts.execution_environment:
        annotations.append(f"        run.googleapis.com/execution-environment: {facts.execution_environment}")
    if facts.direct_vpc:
        annotations.append(
            '        run.googleapis.com/network-interfaces: \'[{"network":"default","subnetwork":"default"}]\''
        )
    if not config.cpu_idle or draw(st.booleans()):
        annotations.append(
            f"        run.googleapis.com/cpu-throttling: {quote(str(config.cpu_idle).lower())}"
        )
    if config.startup_cpu_boost:
        annotations.append(f"        run.googleapis.com/startup-cpu-boost: {quote('true')}")
    cpu, memory = quote(format_cpu(config.cpu)), format_memory(config.memory_mib)
    if draw(st.booleans()):
        limits = [f"          limits: {{cpu: {cpu}, memory: {memory}}}"]
    else:
        limits = [
            "          limits:",
            f"            cpu: {cpu}",
            f"            memory: {memory}  # sized by hand",
        ]
    lines = [
        "# Service owned by the payments team: edit with care",
        "apiVersion: serving.knative.dev/v1",
        "kind: Service",
        "metadata:",
        "  name: svc",
        *(["  annotations:", *service_annotations] if service_annotations else []),
        "spec:",
        "  template:",
        "    metadata:",
        "      name: svc-00001-abc",
        *(["      annotations:", *annotations] if annotations else []),
        "    spec:",
        *(
            [f"      containerConcurrency: {config.concurrency}"]
            if config.concurrency != 80 or comment
            else []
        ),
        "      containers:",
        "      - image: europe-docker.pkg.dev/p/r/svc:1.0   # pinned",
        "        env:",
        "        - name: LIMIT",
        "          value: '1e3'",
        "        - name: BANNER",
        "          value: |",
        "            first line",
        "              indented line",
        "        ports:",
        "        - containerPort: 8080",
        "        resources:",
        *limits,
        "",
        "  traffic:",
        "  - latestRevision: true",
        "    percent: 100",
    ]
    return "\n".join(lines) + "\n"


@st.composite
def usage_series(draw: st.DrawFn, metric: str) -> MetricSeries | None:
    shape = draw(st.sampled_from(["none", "flat", "spike", "daily"]))
    if shape == "none":
        return None
    level = draw(st.floats(1, 99))
    hours = 9 * 24
    t = np.arange(hours, dtype=np.int64) * 3_600_000 + 1_700_000_000_000
    values = np.full(hours, level)
    if shape == "spike":
        values[draw(st.integers(0, hours - 3)) : hours] = draw(st.floats(70, 100))
    elif shape == "daily":
        values = level * (0.6 + 0.4 * np.sin(np.arange(hours) / 24 * 2 * np.pi) ** 2)
    return make_series(metric, t, np.clip(values, 0, 100), "synthetic")


def changed_lines_are_editable(before: str, after: str) -> None:
    old, new = before.splitlines(), after.splitlines()
    for op, i1, i2, _j1, _j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            for line in old[i1:i2]:
                assert EDITABLE.search(line), f"unrelated line changed: {line!r}"
    for kept in (
        "# Service owned by the payments team",
        "value: '1e3'",
        "value: |",
        "  indented line",
        "# pinned",
    ):
        assert kept in after


def apply_and_roll_back(
    path: Path, original: str, changes: dict[str, Any], facts: ServiceFacts
) -> ServiceConfig:
    path.write_text(original)
    actuator = CloudRunYamlActuator(path)
    actuator.limits = LIMITS
    snapshot = actuator.snapshot()
    written = actuator.apply(changes)
    text = path.read_text()
    assert rules.violations(written, actuator.read_facts(), LIMITS) == [], (changes, text)
    assert all(written.model_dump()[k] == v for k, v in changes.items())
    changed_lines_are_editable(original, text)
    doc = yaml.safe_load(text)
    for where in (doc["metadata"], doc["spec"]["template"]["metadata"]):
        for value in (where.get("annotations") or {}).values():
            assert isinstance(value, str)  # annotation values stay strings
    assert doc["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "1e3"
    actuator.restore(snapshot, changes)
    assert path.read_bytes() == original.encode()
    return written


def floors(
    current: ServiceConfig, cpu: MetricSeries | None, memory: MetricSeries | None
) -> tuple[float, float]:
    cpu_floor = float(np.percentile(cpu.values, 90)) / 100 * current.cpu * 1.15 if cpu is not None else 0.0
    memory_floor = float(memory.values.max()) / 100 * current.memory_mib * 1.15 if memory is not None else 0.0
    return cpu_floor, memory_floor


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_changes_stay_inside_the_rules_and_the_owners_file(data: st.DataObject) -> None:
    config, facts = data.draw(services())
    text = data.draw(documents(config, facts))
    cpu = data.draw(usage_series("cpu"))
    memory = data.draw(usage_series("memory"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "service.yaml"
        path.write_text(text)
        actuator = CloudRunYamlActuator(path)
        assert actuator.read() == config and actuator.read_facts() == facts

        # performance
        series = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
        results = {}
        for name, rule in THRESHOLDS.items():
            if rule.metric in series:
                s = series[rule.metric]
                found = RuleResult(
                    name, rule, s, find_episodes(s.t_ms, s.values, rule.above, rule.for_minutes * 60)
                )
                if len(found.episodes):
                    results[name] = found
        inputs = Inputs(
            service="svc",
            current=config,
            results=results,
            series=series,
            rules=dict(THRESHOLDS),
            focused=False,
            settings=PerformanceSettings(),
            single_threaded=False,
            facts=facts,
            limits=LIMITS,
        )
        usage = observed_usage(config, series, 0.15)
        final, planned = plan(config, recommend(inputs), facts=facts, limits=LIMITS, usage=usage)
        assert rules.violations(final, facts, LIMITS) == [], final
        cpu_floor, memory_floor = floors(config, cpu, memory)
        if final.cpu != config.cpu:
            assert final.cpu >= cpu_floor - 1e-9, (config, final)
        if final.memory_mib != config.memory_mib:
            assert final.memory_mib >= memory_floor - 1e-6, (config, final)
        for change in planned:
            apply_and_roll_back(path, text, change.changes, facts)

        # infrastructure
        cap = rules.scale_cap(config, facts, LIMITS, ceiling=1000)
        desired_min = data.draw(st.integers(0, 400))
        max_needed = data.draw(st.integers(1, 400))
        scaling = _scaling_changes(config, desired_min, max_needed, cap)
        if scaling:
            apply_and_roll_back(path, text, scaling, facts)

        # cost: rightsizing on the file's configuration
        service = RunService(
            name="svc", vcpu=config.cpu, memory_gib=config.memory_mib / 1024, manifest=str(path)
        )
        waste = WasteSettings(min_samples=24)
        sized = rightsize(
            service, cpu, memory, waste, memory_limit_percent=80, state=TargetState(config, facts, "file")
        )
        if sized is not None:
            vcpu, memory_gib, _ = sized
            proposed = {"cpu": vcpu, "memory_mib": int(round(memory_gib * 1024))}
            written = apply_and_roll_back(path, text, proposed, facts)
            used = ObservedUsage(
                cpu_p90_cores=float(np.percentile(cpu.values, 90)) / 100 * config.cpu
                if cpu is not None
                else None,
                memory_peak_mib=float(memory.values.max()) / 100 * config.memory_mib
                if memory is not None
                else None,
            )
            assert rules.below_usage(config, written, used) == []

        # cost: the billing-mode switch is written only where the rules allow it
        switch = {"cpu_idle": not config.cpu_idle}
        if not rules.new_violations(config, config.with_changes(switch), facts, LIMITS):
            apply_and_roll_back(path, text, switch, facts)

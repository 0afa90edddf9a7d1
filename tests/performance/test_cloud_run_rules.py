"""The cases that motivated Cloud Run's rules table: fractional vCPU kept, caps respected, the
owner's YAML edited only where it changes, --metric SERVICE.NAME accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from orchestra.actuators import rules
from orchestra.actuators.base import ServiceConfig
from orchestra.actuators.cloud_run_yaml import CloudRunYamlActuator
from orchestra.actuators.rules import CloudRunLimits, ServiceFacts
from orchestra.automations.infrastructure.engine import _scaling_changes
from orchestra.automations.performance.episodes import find_episodes
from orchestra.automations.performance.models import PerformanceSettings
from orchestra.automations.performance.recommend import Inputs, Recommendation, RuleResult, plan, recommend
from orchestra.config import default_config_text, parse_config
from orchestra.metrics.base import make_series
from orchestra.models import Risk

THRESHOLDS = parse_config(default_config_text()).thresholds
GEN1 = ServiceFacts(execution_environment="gen1")


def memory_breach(current: ServiceConfig, facts: ServiceFacts) -> list[Recommendation]:
    t = np.arange(0, 3600, 60, dtype=np.int64) * 1000 + 1_700_000_000_000
    series = make_series("memory", t, np.full(t.shape, 95.0), "synthetic")
    rule = THRESHOLDS["memory"]
    result = RuleResult(
        "memory", rule, series, find_episodes(series.t_ms, series.values, rule.above, rule.for_minutes * 60)
    )
    return recommend(
        Inputs(
            service="svc",
            current=current,
            results={"memory": result},
            series={"memory": series},
            rules={"memory": rule},
            focused=True,
            settings=PerformanceSettings(),
            single_threaded=False,
            facts=facts,
        )
    )


def test_a_fractional_service_grows_memory_without_leaving_fractional_cpu() -> None:
    current = ServiceConfig(cpu=0.08, memory_mib=128, concurrency=1)
    final, changes = plan(current, memory_breach(current, GEN1), facts=GEN1)
    assert final.cpu == 0.08 and final.memory_mib == 256
    assert [c.changes for c in changes] == [{"memory_mib": 256}]


def test_a_step_to_whole_vcpu_says_why() -> None:
    current = ServiceConfig(cpu=0.5, memory_mib=1024, concurrency=1)
    [rec] = memory_breach(current, GEN1)
    assert rec.changes == {"memory_mib": 2048, "cpu": 1.0}
    assert "needs at least 1 vCPU" in rec.expected_effect


def test_a_memory_downsizing_keeps_500m() -> None:
    current = ServiceConfig(cpu=0.5, memory_mib=1024, concurrency=1)
    rec = Recommendation(
        id="svc:rightsizing:memory",
        cause="rightsizing-memory",
        title="less memory",
        changes={"memory_mib": 512},
        risk=Risk.high,
        expected_effect="-",
    )
    final, _ = plan(current, [rec], facts=GEN1)
    assert final.cpu == 0.5 and final.memory_mib == 512


def test_max_instances_stay_under_direct_vpc_and_service_level_caps() -> None:
    current = ServiceConfig(max_instances=100)
    vpc = ServiceFacts(direct_vpc=True)
    assert rules.scale_cap(current, vpc, CloudRunLimits(), ceiling=1000) == 100
    assert rules.violations(current.with_changes({"max_instances": 150}), vpc)
    service_max = ServiceFacts(service_max_instances=2)
    cap = rules.scale_cap(ServiceConfig(max_instances=2), service_max, CloudRunLimits(), ceiling=1000)
    assert _scaling_changes(ServiceConfig(max_instances=2), desired_min=3, max_needed=8, cap=cap) == {
        "min_instances": 2
    }
    quota = CloudRunLimits(regional_vcpu_quota=1000)
    assert rules.scale_cap(ServiceConfig(cpu=8, memory_mib=4096), ServiceFacts(), quota, ceiling=1000) == 125


def test_the_owners_yaml_changes_only_where_it_must(tmp_path: Path) -> None:
    text = """\
# owned by payments
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: svc
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/maxScale: "10"   # agreed with SRE
    spec:
      containers:
      - image: img
        env:
        - name: LIMIT
          value: '1e3'
        - name: NOTE
          value: |
            two
            lines
        resources:
          limits: {cpu: '1', memory: 512Mi}
"""
    path = tmp_path / "service.yaml"
    path.write_text(text)
    actuator = CloudRunYamlActuator(path)
    snapshot = actuator.snapshot()
    actuator.apply({"max_instances": 20, "min_instances": 1, "memory_mib": 1024})
    after = path.read_text()
    assert after == text.replace('"10"   # agreed', '"20"   # agreed').replace(
        "# agreed with SRE\n", "# agreed with SRE\n        autoscaling.knative.dev/minScale: '1'\n"
    ).replace("memory: 512Mi}", "memory: 1Gi}")
    diff = (actuator.last_diff or "").splitlines()
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert len(added) == 3 and all("Scale" in line or "memory" in line for line in added)
    actuator.restore(snapshot, {"max_instances": 20, "min_instances": 1, "memory_mib": 1024})
    assert path.read_bytes() == text.encode()


def test_run_accepts_per_service_metrics() -> None:
    from orchestra.toolkit.cli import metric_files

    assert metric_files(("checkout-api.cpu=a.csv",), per_service=True) == {"checkout-api.cpu": "a.csv"}

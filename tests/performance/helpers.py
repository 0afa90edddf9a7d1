"""Shared helpers for the performance and infrastructure tests."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from orchestra.automation import Automation, RunContext
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config, default_config_text, parse_config
from orchestra.inputs import local_context
from orchestra.models import Mode, Run, TriggerKind
from orchestra.store.base import StateStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
METRICS = FIXTURES / "metrics"
CPU_HIGH = METRICS / "ec2_cpu_utilization_825cc2.csv"  # mostly 90 %+, three long episodes over 70 %
CPU_MID = METRICS / "ec2_cpu_utilization_5f5533.csv"  # 35..68 %
CPU_LOW = METRICS / "rds_cpu_utilization_cc0c53.csv"  # 5..25 %
REQUESTS = METRICS / "elb_request_count_8c0756.csv"  # requests per 5 minutes
SAMPLE_YAML = Path(__file__).resolve().parents[2] / "shared/orchestra/samples/performance/service.yaml"


def default_config() -> Config:
    return parse_config(default_config_text())


def make_ctx(
    automation: Automation,
    store: StateStore,
    *,
    params: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    environment: str = "development",
    clock: FakeClock | None = None,
    config: Config | None = None,
    mode: Mode = Mode.analyze,
) -> RunContext:
    config = config or default_config()
    clock = clock or FakeClock()
    now = clock.now()
    params = params or {}
    run = Run(
        id=f"{automation.name}-test",
        task=automation.name,
        trigger_kind=TriggerKind.manual,
        trigger_id="test",
        environment=environment,
        mode=mode,
        automation_level=3,
        created_at=now,
        updated_at=now,
        params=params,
    )
    return RunContext(
        run=run,
        config=config,
        environment=config.environment(environment),
        settings=automation.Settings.model_validate(settings or {}),
        params=automation.Params.model_validate(params, context=local_context()),
        store=store,
        clock=clock,
        ids=RandomIds(7),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
    )


def copy_yaml(tmp_path: Path, name: str = "service.yaml") -> Path:
    target = tmp_path / name
    shutil.copy(SAMPLE_YAML, target)
    return target


def write_csv(path: Path, rows: list[tuple[str, float]] | list[str], header: str = "timestamp,value") -> Path:
    lines = [header] if header is not None else []
    for row in rows:
        lines.append(row if isinstance(row, str) else f"{row[0]},{row[1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]

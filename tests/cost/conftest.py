"""Fixtures for the cost and ai-services tests: a RunContext without the runner."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
from orchestra.automation import Automation, RunContext
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import load_config
from orchestra.inputs import local_context
from orchestra.models import Mode, Run, TriggerKind
from orchestra.store.base import StateStore
from pydantic import BaseModel

MakeContext = Callable[..., RunContext]


def build_context(
    automation: type[Automation] | Automation,
    store: StateStore,
    *,
    settings: dict[str, Any] | BaseModel | None = None,
    params: dict[str, Any] | None = None,
    environment: str = "development",
    now: dt.datetime | None = None,
) -> RunContext:
    config = load_config()
    cls = automation if isinstance(automation, type) else type(automation)
    if isinstance(settings, BaseModel):
        resolved = settings
    else:
        base = dict(config.automation(cls.name).settings)
        base.update(settings or {})
        resolved = cls.Settings.model_validate(base)
    clock = FakeClock(now or dt.datetime(2025, 3, 18, 6, 0, tzinfo=dt.UTC))
    run = Run(
        id=f"{cls.name}-test",
        task=cls.name,
        trigger_kind=TriggerKind.manual,
        trigger_id="test",
        environment=environment,
        mode=Mode.analyze,
        automation_level=1,
        params=params or {},
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    return RunContext(
        run=run,
        config=config,
        environment=config.environment(environment),
        settings=resolved,
        params=cls.Params.model_validate(params or {}, context=local_context()),
        store=store,
        clock=clock,
        ids=RandomIds(seed=1),
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
    )


@pytest.fixture
def make_context(sqlite_store: StateStore) -> MakeContext:
    def make(automation: Any, **kwargs: Any) -> RunContext:
        return build_context(automation, sqlite_store, **kwargs)

    return make

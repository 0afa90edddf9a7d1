"""The default branch mapping follows the environments a configuration defines; what the
configuration states itself is checked."""

from __future__ import annotations

import logging

import pytest
from orchestra.app import build_app
from orchestra.automations.deployment.requests import check_settings, deployment_settings, environment_for_ref
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.errors import ConfigError
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore

DEVELOPMENT_ONLY = "environments: {development: {}}\ndefault_environment: development\n"


def test_defaults_naming_missing_environments_deploy_nowhere() -> None:
    config = parse_config(DEVELOPMENT_ONLY)
    check_settings(config, deployment_settings(config))  # no problem: nothing was configured
    assert environment_for_ref(config, "refs/heads/main") is None  # production is not defined
    assert environment_for_ref(config, "refs/heads/develop") is None  # nor is staging
    assert environment_for_ref(config, "refs/heads/feature/x") == "development"


def test_a_stated_mapping_to_a_missing_environment_is_an_error() -> None:
    config = parse_config(
        DEVELOPMENT_ONLY + "automations:\n  deployment:\n    settings:\n      branches: {main: production}\n"
    )
    with pytest.raises(ConfigError) as caught:
        check_settings(config, deployment_settings(config))
    assert "branches.main: unknown environment 'production'" in str(caught.value)
    stated_other = parse_config(
        DEVELOPMENT_ONLY + "automations:\n  deployment:\n    settings:\n      other_branches: qa\n"
    )
    with pytest.raises(ConfigError, match="other_branches: unknown environment 'qa'"):
        check_settings(stated_other, deployment_settings(stated_other))


def test_a_finished_run_under_such_a_configuration_warns_of_nothing(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(DEVELOPMENT_ONLY)
    store = SqliteStateStore(str(tmp_path / "state.db"))
    app = build_app(config=config, store=store, clock=FakeClock(), ids=RandomIds(7))
    with caplog.at_level(logging.WARNING, logger="orchestra"):
        run = app.runner.submit(RunRequest(task="testing", environment="development")).run
    assert run.status.value == "succeeded", run.reason
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text

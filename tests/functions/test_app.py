"""``orchestra.app``: the application functions build from the environment, once per process."""

from __future__ import annotations

import sys
import types

import pytest
from orchestra import app as app_module
from orchestra import registry as registry_module
from orchestra.app import get_app, load_extra_automations, reset_app
from orchestra.errors import ConfigError
from orchestra.registry import Registry
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.conftest import FUNCTIONS_CONFIG, make_client, post_pubsub
from tests.functions.plugins import Probe


@pytest.fixture
def env_app(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text(FUNCTIONS_CONFIG)
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.setenv("ORCHESTRA_STORE", f"sqlite:///{tmp_path / 'fn.db'}")
    monkeypatch.setenv("ORCHESTRA_EXTRA_AUTOMATIONS", "tests.functions.plugins")
    monkeypatch.setattr(registry_module.registry, "_classes", dict(registry_module.registry._classes))
    previous = app_module.set_app(None)
    yield tmp_path / "fn.db"
    reset_app()
    app_module.set_app(previous)


def test_function_builds_its_app_from_the_environment_once(env_app):
    client = make_client("scheduled")
    assert post_pubsub(client, {"task": "probe"}, message_id="env-1").status_code == 200
    first = get_app()
    assert post_pubsub(client, {"task": "probe"}, message_id="env-2").status_code == 200
    assert get_app() is first  # cached for the life of the instance
    assert first.store.url.endswith("fn.db") and first.config.runner.retry.initial_seconds == 0.01
    check = SqliteStateStore(env_app)
    assert {r.trigger_id for r in check.list_runs(task="probe")} == {"env-1", "env-2"}
    check.close()


def test_bad_configuration_raises_so_the_platform_redelivers(env_app, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: {}\ndefault_environment: nowhere\n")
    monkeypatch.setenv("CONFIG_PATH", str(bad))
    client = make_client("scheduled")
    response = post_pubsub(client, {"task": "probe"}, message_id="env-3")
    assert response.status_code == 500  # nacked, not recorded as the message's fault


def test_extra_automations_by_import_or_register_hook(monkeypatch):
    registry = Registry({})
    assert load_extra_automations("tests.functions.plugins", registry) == ["tests.functions.plugins"]
    assert registry.get_class("probe") is Probe

    module = types.ModuleType("operator_plugins_example")
    calls: list[Registry] = []
    module.register = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "operator_plugins_example", module)
    load_extra_automations(" operator_plugins_example , ", registry)
    assert calls == [registry]


def test_unimportable_extra_automation_is_a_config_error():
    with pytest.raises(ConfigError) as exc:
        load_extra_automations("no_such_module_xyz", Registry({}))
    assert "no_such_module_xyz" in str(exc.value)

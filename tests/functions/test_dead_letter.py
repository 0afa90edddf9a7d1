"""``dead_letter``: storing dead-lettered messages; ``orchestra dlq`` list / show / replay."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from orchestra import registry as registry_module
from orchestra.cli.main import cli
from orchestra.errors import InputError, NotFound
from orchestra.events.dead_letters import replay_dead_letter
from orchestra.models import RunStatus, TriggerKind

from tests.functions.conftest import FUNCTIONS_CONFIG, post_pubsub
from tests.functions.plugins import count
from tests.functions.test_alerts import CLOUD_RUN_CPU

FUNCTION = "dead_letter"


def dead_lettered(extra: dict[str, str] | None = None, attempts: str = "5") -> dict[str, str]:
    return {
        "CloudPubSubDeadLetterSourceDeliveryCount": attempts,
        "CloudPubSubDeadLetterSourceSubscription": "orchestra-scheduled-push",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "orchestra-test",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-05T11:59:00.000Z",
        **(extra or {}),
    }


def send(client, data, message_id="dl-1", attributes=None):
    return post_pubsub(
        client,
        data,
        message_id=message_id,
        topic="orchestra-dead-letters",
        attributes=attributes if attributes is not None else dead_lettered(),
        subscription="projects/orchestra-test/subscriptions/orchestra-dead-letters-push",
    )


def test_dead_letter_is_stored_with_origin_and_attempts(client, fn_app):
    task = {"task": "probe", "params": {"note": "nightly"}}
    assert send(client, task).status_code == 200
    [letter] = fn_app.store.list_dead_letters()
    assert letter.message_id == "dl-1"
    assert letter.origin == "projects/orchestra-test/subscriptions/orchestra-scheduled-push"
    assert letter.delivery_attempt == 5
    assert json.loads(letter.data) == task
    assert letter.attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] == "2026-01-05T11:59:00.000Z"
    [record] = fn_app.store.list_events(source="dead_letter")
    assert record.status == "accepted" and record.payload["dead_letter_id"] == letter.id


def test_redelivered_dead_letter_is_stored_once(client, fn_app):
    send(client, {"task": "probe"})
    send(client, {"task": "probe"})
    assert len(fn_app.store.list_dead_letters()) == 1
    assert sorted(r.status for r in fn_app.store.list_events(source="dead_letter")) == [
        "accepted",
        "duplicate",
    ]


def test_binary_data_is_kept_exactly(client, fn_app):
    send(client, b"\xff\xfe\x00poison")
    [letter] = fn_app.store.list_dead_letters()
    assert letter.data.startswith("base64:")


def test_poison_that_was_dead_lettered_is_still_stored(client, fn_app):
    send(client, b"{not json")
    [letter] = fn_app.store.list_dead_letters()
    assert letter.data == "{not json"


def test_huge_message_is_stored_truncated_and_not_replayed(client, fn_app):
    from orchestra.events.dead_letters import MAX_STORED_DATA_BYTES

    big = {"task": "probe", "params": {"blob": "é" * (512 * 1024)}}
    assert send(client, big).status_code == 200
    [letter] = fn_app.store.list_dead_letters()
    assert letter.data_truncated and len(letter.data.encode()) <= MAX_STORED_DATA_BYTES
    assert letter.data_bytes == len(json.dumps(big).encode())  # as the publisher encoded it
    with pytest.raises(InputError, match="only the first"):
        replay_dead_letter(fn_app, letter.id, "user:ops")


def test_replay_runs_the_original_trigger_once(client, fn_app, counter):
    send(client, {"task": "probe", "environment": "staging", "params": {"counter": str(counter)}})
    [letter] = fn_app.store.list_dead_letters()
    first = replay_dead_letter(fn_app, letter.id, "user:carol")
    second = replay_dead_letter(fn_app, letter.id, "user:carol")
    run = first.outcome.run
    assert run.status == RunStatus.succeeded and run.environment == "staging"
    assert (run.trigger_id, run.source_event, run.requested_by) == (
        f"replay:{letter.id}",
        letter.id,
        "user:carol",
    )
    assert run.trigger_kind == TriggerKind.scheduled
    assert second.outcome.duplicate and second.outcome.run.id == run.id
    assert count(counter, f"analyze:replay:{letter.id}") == 1
    assert fn_app.store.get_dead_letter(letter.id).replayed_run_ids == [run.id]
    assert fn_app.store.list_runs(source_event=letter.id)[0].id == run.id


def test_replay_of_attributes_only_message(client, fn_app):
    send(client, None, attributes=dead_lettered({"task": "probe", "automation_level": "0"}))
    [letter] = fn_app.store.list_dead_letters()
    run = replay_dead_letter(fn_app, letter.id, "user:carol").outcome.run
    assert run.status == RunStatus.succeeded and run.automation_level == 0


def test_replay_of_an_alert(client, fn_app):
    send(client, CLOUD_RUN_CPU, message_id="dl-alert")
    [letter] = fn_app.store.list_dead_letters()
    replay = replay_dead_letter(fn_app, letter.id, "user:carol")
    assert replay.kind == "alert"
    run = replay.outcome.run
    assert (
        run.task == "performance" and run.params["focus"] == "cpu" and run.trigger_kind == TriggerKind.alert
    )


def test_replay_of_unknown_or_unrunnable_letters(client, fn_app):
    with pytest.raises(NotFound):
        replay_dead_letter(fn_app, "nope", "user:carol")
    send(client, b"{not json", message_id="dl-bad")
    from orchestra.errors import InputError

    with pytest.raises(InputError, match="not a JSON object"):
        replay_dead_letter(fn_app, "dl-bad", "user:carol")
    send(client, b"[" * 100_000, message_id="dl-deep")
    with pytest.raises(InputError, match="deep"):
        replay_dead_letter(fn_app, "dl-deep", "user:carol")


def test_replay_that_fails_transiently_is_linked_and_raised(client, fn_app, counter):
    from orchestra.errors import TransientError

    send(client, {"task": "probe", "params": {"counter": str(counter), "fail": "transient"}})
    with pytest.raises(TransientError):
        replay_dead_letter(fn_app, "dl-1", "user:carol")
    assert len(fn_app.store.get_dead_letter("dl-1").replayed_run_ids) == 1


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """A store file and configuration the CLI opens; the probe plugin through the env hook."""
    config = tmp_path / "config.yaml"
    config.write_text(FUNCTIONS_CONFIG)
    store = tmp_path / "cli-state.db"
    monkeypatch.setenv("CONFIG_PATH", str(config))
    monkeypatch.setenv("ORCHESTRA_STORE", f"sqlite:///{store}")
    monkeypatch.setenv("ORCHESTRA_EXTRA_AUTOMATIONS", "tests.functions.plugins")
    # The hook registers into the process-wide registry: restore it afterwards.
    monkeypatch.setattr(registry_module.registry, "_classes", dict(registry_module.registry._classes))
    return store


def test_cli_list_show_replay(cli_env, counter, tmp_path, monkeypatch):
    from orchestra.app import build_app
    from orchestra.clock import FakeClock
    from orchestra.config import load_config
    from orchestra.events.dead_letters import handle_dead_letter
    from orchestra.store.sqlite import SqliteStateStore

    from tests.functions.conftest import binary_headers, pubsub_data

    store = SqliteStateStore(cli_env)
    app = build_app(config=load_config(None), store=store, clock=FakeClock())
    from cloudevents.http import CloudEvent

    data = pubsub_data(
        {"task": "probe", "params": {"counter": str(counter)}}, message_id="dl-9", attributes=dead_lettered()
    )
    attrs = {k[3:]: v for k, v in binary_headers("dl-9").items() if k.startswith("ce-")}
    handle_dead_letter(CloudEvent(attrs, data), app)
    store.close()

    runner = CliRunner()
    listed = runner.invoke(cli, ["dlq", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    [letter] = json.loads(listed.output)
    assert letter["id"] == "dl-9" and letter["delivery_attempt"] == 5
    text = runner.invoke(cli, ["dlq", "list"])
    assert text.exit_code == 0 and "dl-9" in text.output
    shown = runner.invoke(cli, ["dlq", "show", "dl-9"])
    assert shown.exit_code == 0, shown.output
    assert "orchestra-scheduled-push" in shown.output and '"task": "probe"' in shown.output
    replayed = runner.invoke(cli, ["dlq", "replay", "dl-9", "--as", "user:carol", "--format", "json"])
    assert replayed.exit_code == 0, replayed.output
    out = json.loads(replayed.output)
    assert out["run"]["trigger_id"] == "replay:dl-9" and out["duplicate"] is False
    again = runner.invoke(cli, ["dlq", "replay", "dl-9", "--as", "user:carol", "--format", "json"])
    assert json.loads(again.output)["duplicate"] is True
    assert count(counter, "analyze:replay:dl-9") == 1
    runs = runner.invoke(cli, ["runs", "list", "--trigger-id", "dl-9", "--format", "json"])
    assert [r["trigger_id"] for r in json.loads(runs.output)] == ["replay:dl-9"]
    missing = runner.invoke(cli, ["dlq", "replay", "nope"])
    assert missing.exit_code == 2 and "no dead letter" in missing.output
    unknown_show = runner.invoke(cli, ["dlq", "show", "nope"])
    assert unknown_show.exit_code == 2

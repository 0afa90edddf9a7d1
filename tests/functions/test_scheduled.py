"""``scheduled_task``: Pub/Sub CloudEvents -> runs, through the functions-framework app."""

from __future__ import annotations

import json
from pathlib import Path

from orchestra.models import RunStatus, TriggerKind, run_id_for

from tests.functions.conftest import binary_headers, post_pubsub, pubsub_data
from tests.functions.plugins import count

FUNCTION = "scheduled"


def events(fn_app, status=None):
    return fn_app.store.list_events(source="scheduled", status=status, limit=None)


def test_message_runs_the_task_once_with_traceable_ids(client, fn_app, counter):
    task = {"task": "probe", "mode": "analyze", "environment": "staging", "params": {"counter": str(counter)}}
    response = post_pubsub(client, task, message_id="1001")
    assert response.status_code == 200, response.data
    run = fn_app.store.get_run(run_id_for("probe", "1001"))
    assert run is not None and run.status == RunStatus.succeeded
    assert (run.trigger_kind, run.trigger_id, run.source_event) == (TriggerKind.scheduled, "1001", "1001")
    assert run.environment == "staging"
    assert run.requested_by == "pubsub:orchestra-scheduled"
    [record] = events(fn_app)
    assert (record.status, record.event_id, record.run_ids) == ("accepted", "1001", [run.id])
    assert fn_app.store.list_runs(source_event="1001")[0].id == run.id
    assert count(counter, "analyze:1001") == 1


def test_redelivered_message_is_one_run_and_a_visible_duplicate(client, fn_app, counter):
    task = {"task": "probe", "params": {"counter": str(counter)}}
    assert post_pubsub(client, task, message_id="2002").status_code == 200
    assert post_pubsub(client, task, message_id="2002").status_code == 200
    assert len(fn_app.store.list_runs(task="probe")) == 1
    assert count(counter, "analyze:2002") == 1
    statuses = sorted(r.status for r in events(fn_app))
    assert statuses == ["accepted", "duplicate"]
    duplicate = events(fn_app, "duplicate")[0]
    assert duplicate.run_ids == [run_id_for("probe", "2002")]


def test_publisher_trigger_id_makes_two_publishes_one_run(client, fn_app, counter):
    task = {"task": "probe", "trigger_id": "deploy-check-42", "params": {"counter": str(counter)}}
    post_pubsub(client, task, message_id="3001")
    post_pubsub(client, task, message_id="3002")
    [run] = fn_app.store.list_runs(task="probe")
    assert run.trigger_id == "deploy-check-42" and run.source_event == "3001"
    assert count(counter, "analyze:deploy-check-42") == 1


def test_attributes_only_message(client, fn_app, counter):
    attributes = {"task": "probe", "automation_level": "2", "params": json.dumps({"counter": str(counter)})}
    assert post_pubsub(client, None, message_id="4001", attributes=attributes).status_code == 200
    run = fn_app.store.get_run(run_id_for("probe", "4001"))
    assert run.status == RunStatus.succeeded and run.automation_level == 2


def test_raw_push_from_a_push_subscription_is_converted(client, fn_app, counter):
    # What the Pub/Sub emulator (and a real push subscription) POSTs, path naming the topic.
    body = {
        "subscription": "projects/orchestra-test/subscriptions/scheduled-push",
        "message": {
            "data": pubsub_data({"task": "probe", "params": {"counter": str(counter)}}, message_id="x")[
                "message"
            ]["data"],
            "attributes": {},
            "messageId": "5001",
            "message_id": "5001",
            "publishTime": "2026-01-05T12:00:00.000Z",
        },
    }
    response = client.post(
        "/projects/orchestra-test/topics/orchestra-scheduled",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.data
    run = fn_app.store.get_run(run_id_for("probe", "5001"))
    assert run.status == RunStatus.succeeded
    assert run.requested_by == "pubsub:orchestra-scheduled"  # the converter keeps only the topic


def test_structured_cloud_event(client, fn_app):
    event = {
        "specversion": "1.0",
        "id": "6001",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/orchestra-test/topics/orchestra-scheduled",
        "datacontenttype": "application/json",
        "data": pubsub_data({"task": "probe"}, message_id="6001"),
    }
    response = client.post(
        "/", data=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 200
    assert fn_app.store.get_run(run_id_for("probe", "6001")).status == RunStatus.succeeded


def assert_rejected(fn_app, message_id: str, *needles: str) -> str:
    [record] = events(fn_app)
    assert record.status == "rejected" and record.event_id == message_id
    for needle in needles:
        assert needle in record.reason, record.reason
    assert not fn_app.store.list_runs(limit=None)
    return record.reason


def test_malformed_json_is_rejected_and_acknowledged(client, fn_app):
    response = post_pubsub(client, b"{not json", message_id="7001")
    assert response.status_code == 200  # acknowledged: never redelivered
    assert_rejected(fn_app, "7001", "message.data", "not valid JSON")
    assert events(fn_app)[0].payload["data"]  # the offending data is kept for the operator


def test_json_nested_beyond_the_parser_is_rejected_not_retried(client, fn_app):
    response = post_pubsub(client, b'{"task": ' + b"[" * 100_000, message_id="7011")
    assert response.status_code == 200  # a permanent problem: acknowledged, not redelivered
    assert_rejected(fn_app, "7011", "message.data", "deep")


def test_unknown_task_is_rejected_naming_the_task(client, fn_app):
    assert post_pubsub(client, {"task": "no-such-task"}, message_id="7002").status_code == 200
    reason = assert_rejected(fn_app, "7002", "no-such-task")
    assert reason.startswith("task:")


def test_wrong_types_are_rejected_naming_the_field(client, fn_app):
    post_pubsub(client, {"task": "probe", "automation_level": "high"}, message_id="7003")
    assert_rejected(fn_app, "7003", "automation_level")


def test_unknown_keys_and_bad_params_are_rejected(client, fn_app):
    post_pubsub(client, {"task": "probe", "enviroment": "production"}, message_id="7004")
    assert_rejected(fn_app, "7004", "enviroment", "unknown key")


def test_bad_params_for_the_task(client, fn_app):
    post_pubsub(client, {"task": "probe", "params": {"colour": "red"}}, message_id="7005")
    assert_rejected(fn_app, "7005", "params.colour")


def test_unknown_environment(client, fn_app):
    post_pubsub(client, {"task": "probe", "environment": "qa"}, message_id="7006")
    assert_rejected(fn_app, "7006", "environment", "qa")


def test_data_and_attributes_must_agree(client, fn_app):
    post_pubsub(client, {"task": "probe"}, message_id="7007", attributes={"task": "gatekeeper"})
    assert_rejected(fn_app, "7007", "task", "differently")


def test_empty_message_is_rejected(client, fn_app):
    post_pubsub(client, b"", message_id="7008")
    assert_rejected(fn_app, "7008", "empty")


def test_event_of_another_type_is_rejected(client, fn_app):
    headers = binary_headers("7009", ce_type="google.cloud.storage.object.v1.finalized")
    response = client.post("/", data=json.dumps({"bucket": "b", "name": "n"}), headers=headers)
    assert response.status_code == 200
    assert_rejected(fn_app, "7009", "type")


def test_acknowledged_poison_redelivered_anyway_is_recorded_not_overwritten(client, fn_app):
    post_pubsub(client, b"[1, 2]", message_id="7010")
    post_pubsub(client, b"[1, 2]", message_id="7010")
    statuses = sorted(r.status for r in events(fn_app))
    assert statuses == ["duplicate", "rejected"]


def test_transient_failure_nacks_then_redelivery_retries_the_same_run(client, fn_app, counter: Path):
    task = {"task": "probe", "params": {"counter": str(counter), "fail": "transient"}}
    response = post_pubsub(client, task, message_id="8001")
    assert response.status_code == 500  # raised: Pub/Sub redelivers
    run = fn_app.store.get_run(run_id_for("probe", "8001"))
    assert run.status == RunStatus.failed and run.error.transient and run.attempts == 3
    record = events(fn_app)[0]
    assert record.status == "accepted" and "redelivery requested" in record.reason
    assert post_pubsub(client, task, message_id="8001").status_code == 500
    assert count(counter, "analyze:8001") == 6  # the redelivery ran the same run again
    assert len(fn_app.store.list_runs(task="probe")) == 1


def test_permanent_failure_of_the_automation_is_recorded_and_acknowledged(client, fn_app, counter):
    task = {"task": "probe", "params": {"counter": str(counter), "fail": "permanent"}}
    assert post_pubsub(client, task, message_id="8002").status_code == 200
    run = fn_app.store.get_run(run_id_for("probe", "8002"))
    assert run.status == RunStatus.failed and not run.error.transient
    assert events(fn_app)[0].status == "accepted"


def test_store_outage_nacks(client, fn_app, monkeypatch):
    from orchestra.errors import StoreUnavailable

    def down(*args, **kwargs):
        raise StoreUnavailable("store unreachable")

    monkeypatch.setattr(fn_app.store, "_create", down)
    monkeypatch.setattr(fn_app.store, "_create_all", down)  # the message's claim with its run
    response = post_pubsub(client, {"task": "probe"}, message_id="8003")
    assert response.status_code == 500


def test_run_given_up_keeps_refusing_so_the_message_is_dead_lettered(client, fn_app, counter):
    task = {"task": "probe", "params": {"counter": str(counter), "fail": "transient"}}
    codes = [post_pubsub(client, task, message_id="8004").status_code for _ in range(5)]
    assert codes == [500] * 5
    run = fn_app.store.get_run(run_id_for("probe", "8004"))
    assert run.attempts == 6  # two deliveries of 3 attempts; max_deliveries (5) reached
    assert count(counter, "analyze:8004") == 6  # later deliveries did not run it again
    gave_up = [r for r in events(fn_app, "duplicate") if "gave up" in (r.reason or "")]
    assert len(gave_up) == 3


def test_a_message_id_is_one_trigger_whatever_it_carries(client, fn_app, counter):
    task = {"task": "probe", "params": {"counter": str(counter)}}
    assert post_pubsub(client, task, message_id="9001").status_code == 200
    [run] = fn_app.store.list_runs(limit=None)
    before = {r.id: r.model_dump(mode="json") for r in fn_app.store.list_runs(limit=None)}
    reused = [
        {"task": "gatekeeper", "mode": "apply", "automation_level": 3},  # another task
        {**task, "params": {"counter": str(counter), "note": "x"}},  # other parameters
        {**task, "trigger_id": "fresh-key"},  # its own idempotency key
    ]
    for data in reused:
        response = post_pubsub(client, data, message_id="9001")
        assert response.status_code == 200 and "Traceback" not in response.get_data(as_text=True)
    response = post_pubsub(client, None, message_id="9001", attributes={"task": "gatekeeper"})
    assert response.status_code == 200
    assert {r.id: r.model_dump(mode="json") for r in fn_app.store.list_runs(limit=None)} == before
    assert count(counter, "analyze:9001") == 1
    duplicates = events(fn_app, "duplicate")
    assert len(duplicates) == 4 and all(
        "already delivered with other content" in d.reason for d in duplicates
    )
    [accepted] = events(fn_app, "accepted")
    assert accepted.run_ids == [run.id]


def test_a_rejected_message_id_cannot_be_reused_for_a_valid_task(client, fn_app, counter):
    post_pubsub(client, {"task": "no-such-task"}, message_id="9002")
    post_pubsub(client, {"task": "probe", "params": {"counter": str(counter)}}, message_id="9002")
    assert not fn_app.store.list_runs(limit=None)
    assert sorted(r.status for r in events(fn_app)) == ["duplicate", "rejected"]


def test_a_message_costs_two_commits_claim_with_run_and_result_with_record(
    client, fn_app, counter, monkeypatch
):
    writes: list[tuple[str, list[str]]] = []
    store = fn_app.store
    for name in ("_create", "_put", "_update_if", "_create_all", "_write_all"):
        original = getattr(store, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            docs = [f"{w.collection}/{w.doc_id}" for w in args[0]] if _name.endswith("_all") else [args[0]]
            writes.append((_name, docs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    task = {"task": "probe", "params": {"counter": str(counter)}}
    assert post_pubsub(client, task, message_id="9100").status_code == 200
    run_id = run_id_for("probe", "9100")
    assert writes == [
        ("_create_all", ["events/scheduled-messages:9100", f"runs/{run_id}"]),
        ("_write_all", [f"runs/{run_id}", "events/scheduled:9100"]),
    ]
    assert store.get_event("scheduled-messages:9100").payload["fingerprint"]
    [accepted] = events(fn_app, "accepted")
    assert accepted.id == "scheduled:9100" and accepted.run_ids == [run_id]
    assert count(counter, "analyze:9100") == 1

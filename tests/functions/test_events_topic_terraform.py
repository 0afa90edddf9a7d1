"""The cloud side of announcements: the events topic, its publishers, the functions' setting, and
the topic `make dev` creates; all named as the code reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest
from orchestra import devtopology
from orchestra.announcements import TOPIC_ENV
from orchestra.config import EventsConfig

from tests.deploy.conftest import _HCL_OPTIONS, TERRAFORM_DIR, Terraform


@pytest.fixture(scope="module")
def tf() -> Terraform:
    files: dict[Path, dict[str, Any]] = {}
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        with path.open() as handle:
            files[path] = hcl2.load(handle, serialization_options=_HCL_OPTIONS)
    return Terraform(files)


def test_events_topic_is_named_like_the_others(tf: Terraform) -> None:
    topics = tf.resources("google_pubsub_topic")
    events = topics["events"]
    assert events["name"] == "${local.name}-events"
    for key in ("kms_key_name", "message_retention_duration"):
        assert events[key] == topics["schedule"][key]
    assert tf.locals()["topics"]["events"] == "${google_pubsub_topic.events}"


def test_every_function_may_publish_to_the_events_topic_only(tf: Terraform) -> None:
    grant = tf.resources("google_pubsub_topic_iam_member")["events_publisher"]
    assert grant["for_each"] == "${google_service_account.fn}"
    assert grant["topic"] == "${google_pubsub_topic.events.id}"
    assert grant["role"] == "roles/pubsub.publisher"
    assert grant["member"] == "${each.value.member}"
    others = [
        name
        for name, body in tf.resources("google_pubsub_topic_iam_member").items()
        if "google_service_account.fn" in str(body.get("member", "")) + str(body.get("for_each", ""))
    ]
    assert others == ["events_publisher"]


def test_functions_are_given_the_full_topic_id(tf: Terraform) -> None:
    function = tf.resources("google_cloudfunctions2_function")["fn"]
    service = function["service_config"]
    service = service[0] if isinstance(service, list) else service
    variables = " ".join(str(service["environment_variables"]).split())
    assert f"{TOPIC_ENV} = google_pubsub_topic.events.id" in variables, variables


def test_the_topic_setting_accepts_what_terraform_and_make_dev_give() -> None:
    assert EventsConfig(topic="projects/orchestra-dev/topics/orchestra-events").topic
    assert EventsConfig(topic="orchestra-production-events").topic
    with pytest.raises(ValueError, match="events|topic|pattern"):
        EventsConfig(topic="projects/p/topics/")


def test_make_dev_creates_the_events_topic_and_points_the_functions_at_it(tmp_path: Path) -> None:
    assert devtopology.EVENTS_TOPIC in devtopology.TOPICS
    topology = devtopology.DevTopology(
        devtopology.DevOptions(root=tmp_path, project="orchestra-dev", log_dir=tmp_path)
    )
    topology.endpoints.pubsub = "127.0.0.1:8085"
    topology.endpoints.firestore = "127.0.0.1:8086"
    env = topology.function_env()
    assert env[TOPIC_ENV] == "projects/orchestra-dev/topics/orchestra-events"
    command = topology.watch_command()
    assert "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=http://127.0.0.1:8085/" in command
    assert command.endswith(
        "gcloud pubsub subscriptions pull orchestra-events-watch --auto-ack --limit=10 --project=orchestra-dev"
    )

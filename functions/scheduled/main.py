"""Cloud Function ``scheduled_task``: Cloud Scheduler -> Pub/Sub -> Eventarc CloudEvent.

The message names a task (``{"task", "mode", "environment", "automation_level", "params"}`` in
the data or the attributes); it runs once per message id. Returning acknowledges the message:
anything permanently wrong with it is recorded as a rejected event, never retried. A transient
failure raises, so Pub/Sub redelivers the message (and dead-letters it after the subscription's
maximum attempts).
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent
from orchestra.app import get_app
from orchestra.events.scheduled import handle_scheduled


@functions_framework.cloud_event
def scheduled_task(event: CloudEvent) -> None:
    handle_scheduled(event, get_app())

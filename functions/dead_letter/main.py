"""Cloud Function ``dead_letter``: messages Pub/Sub gave up on (dead-letter topics).

Stores each message with its data, attributes, origin subscription and delivery count, once per
message id, so nothing is lost. ``orchestra dlq list`` shows them; ``orchestra dlq replay ID``
re-runs the original trigger (deduplicated: a second replay returns the first replay's run).
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent
from orchestra.app import get_app
from orchestra.events.dead_letters import handle_dead_letter


@functions_framework.cloud_event
def dead_letter(event: CloudEvent) -> None:
    handle_dead_letter(event, get_app())

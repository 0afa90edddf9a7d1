"""Cloud Function ``monitoring_alert``: Cloud Monitoring incident -> Pub/Sub -> Eventarc CloudEvent.

An open incident on a metric a configured threshold rule covers starts one focused performance
run (once per incident, however often it is notified); a closed incident is recorded against that
run; anything else is recorded as ignored or rejected with the reason. Transient failures raise
so Pub/Sub redelivers.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent
from orchestra.app import get_app
from orchestra.events.alerts import handle_alert


@functions_framework.cloud_event
def monitoring_alert(event: CloudEvent) -> None:
    handle_alert(event, get_app())

"""Cloud Function ``repo_webhook``: GitHub webhooks.

Every delivery's ``X-Hub-Signature-256`` is verified (secret: ``GITHUB_WEBHOOK_SECRET``) before
anything is parsed. ``push`` to a mapped branch requests a deployment to its environment (once
per ``X-GitHub-Delivery``); ``ping`` answers 200; tag pushes, deletions and unmapped branches are
recorded as ignored with the reason. See orchestra.api.webhooks.
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from orchestra.api.webhooks import handle_webhook
from orchestra.app import get_app


@functions_framework.http
def repo_webhook(request: flask.Request) -> Any:
    return handle_webhook(request, get_app)

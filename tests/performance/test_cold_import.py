"""Loading a plugin (what every function does at cold start) must not load the heavy libraries.

The registry imports a plugin module when a run of it is first handled; its Settings and Params
are validated before any work. numpy, rich, YAML and the Google clients load only when the
automation analyses, acts or renders.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "numpy",
    "yaml",
    "rich",
    "google.cloud.monitoring_v3",
    "google.cloud.run_v2",
    "google.cloud.bigquery",
    "google.auth",
)

CODE = """
import json, sys
from orchestra.registry import registry
for name in ("performance", "infrastructure", "cost", "ai-services"):
    cls = registry.get_class(name)
    cls.Settings.model_validate({})
    cls.Params.model_validate({})
    cls()
print(json.dumps(sorted(sys.modules)))
"""


def test_plugins_load_without_numpy_yaml_rich_or_google_clients() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True, text=True)
    loaded = set(json.loads(done.stdout))
    assert [m for m in HEAVY if m in loaded] == []

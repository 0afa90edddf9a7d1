"""Automations that read one Cloud Run service's metrics and change its settings.

``models`` (settings and trigger parameters), ``inputs`` (which services, their metrics and what
acts on them), ``actions`` (prepare / apply / verify / rollback of a settings change) and
``automation`` (the plugin base class). Nothing heavy is imported here.
"""

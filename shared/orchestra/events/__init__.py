"""Event adapters: payload models for what the platform delivers, and their mapping to runs.

- ``pubsub``: Pub/Sub ``messagePublished`` CloudEvents (Eventarc, or a raw push converted by
  functions-framework);
- ``scheduled``: Cloud Scheduler task messages -> runs;
- ``alerts``: Cloud Monitoring incidents (notification schema 1.2) -> focused performance runs;
- ``github``: GitHub push / ping payloads -> deployment requests;
- ``dead_letters``: messages that exhausted their deliveries: storage and replay;
- ``records``: the event records every handler writes (accepted, rejected, ignored, duplicate).

Handlers take the already-built application (``orchestra.app.App``) so tests can give their own.
Modules here import only pydantic and the library core: Google clients are never imported.
"""

"""The function tests' application and clients, shared with the hostile-input tests."""

from tests.functions.conftest import client, clock, config, counter, fn_app  # noqa: F401 - fixtures

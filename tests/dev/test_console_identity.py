"""Who the console of `make dev` acts as: the emulator's Firestore has no Google accounts, so an
explicit local identity (``--as``) is accepted there, and only there; the topology starts the
console as that identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from orchestra.cli.main import cli
from orchestra.devtopology import DevOptions, DevTopology, parse_args
from orchestra.errors import InputError
from orchestra.identities import cli_identity, is_local_store
from orchestra.store.firestore import FirestoreStateStore

EMULATOR = "127.0.0.1:1"  # never contacted: no store call is made


def _no_account() -> str:
    raise InputError("no Google credentials found", where="credentials")


def test_the_emulator_takes_an_explicit_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", EMULATOR)
    store = FirestoreStateStore(project="orchestra-dev")
    try:
        assert is_local_store(store)
        given = cli_identity(store, " ada@localhost ", local_user=lambda: "user:me", account=_no_account)
        assert given == "ada@localhost"
        assert cli_identity(store, None, local_user=lambda: "user:me", account=_no_account) == "user:me"
    finally:
        store.close()


class _Client:
    """Stands in for a real Firestore client: no emulator variable, so Google's accounts rule."""


def test_real_firestore_still_acts_as_the_google_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    store = FirestoreStateStore(project="orchestra-prod", client=_Client())  # type: ignore[arg-type]
    assert not is_local_store(store)
    with pytest.raises(InputError, match="is not the Google account in use") as exc:
        cli_identity(store, "ada@localhost", local_user=lambda: "x", account=lambda: "ops@corp.example")
    assert exc.value.where == "--as"
    assert cli_identity(store, None, local_user=lambda: "x", account=lambda: "ops@corp.example") == (
        "ops@corp.example"
    )


def test_orchestra_console_against_the_emulator_needs_no_google_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`orchestra console --as` serves as that identity on the emulator; without the emulator the
    same command wants the Google account of the credentials (none here: exit 2)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", EMULATOR)
    monkeypatch.setenv("ORCHESTRA_STORE", "firestore://orchestra-dev")
    monkeypatch.setattr("orchestra.identities.google_account", _no_account)
    seen: dict[str, str] = {}
    monkeypatch.setattr(
        "orchestra.console.serve.serve", lambda app, identity, **kwargs: seen.setdefault("identity", identity)
    )
    result = CliRunner().invoke(cli, ["console", "--port", "0", "--as", "ada@localhost"])
    assert result.exit_code == 0, result.output
    assert seen == {"identity": "ada@localhost"}

    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
    monkeypatch.setattr(FirestoreStateStore, "_new_client", lambda self: _Client())
    refused = CliRunner().invoke(cli, ["console", "--port", "0", "--as", "ada@localhost"])
    assert refused.exit_code == 2 and "no Google credentials found" in refused.output
    assert seen == {"identity": "ada@localhost"}


def test_the_topology_starts_the_console_as_the_local_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "ada")
    default = DevTopology(DevOptions(root=tmp_path))
    assert default.local_identity() == "user:ada"
    options = parse_args(["--console-as", "ops@localhost"])
    assert options.console_as == "ops@localhost"
    topology = DevTopology(DevOptions(root=tmp_path, console_as="ops@localhost", project="p-1"))
    argv = topology.console_argv(8123)
    assert argv[1:] == [
        "-m",
        "orchestra.cli.main",
        "console",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--as",
        "ops@localhost",
    ]
    topology.endpoints.firestore = "127.0.0.1:9000"
    env = topology.function_env()
    assert env["ORCHESTRA_STORE"] == "firestore://p-1" and env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:9000"
    assert env["ORCHESTRA_API_TOKENS"].endswith("=ops@localhost")

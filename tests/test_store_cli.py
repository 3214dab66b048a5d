"""`heartbeats tenant` and `heartbeats records` through click's runner, on a tmp SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cli import data_commands as store_commands
from store import open_store


def _heartbeats_cli() -> click.Group:
    """The real `heartbeats` group; until every command module exists, a group of ours alone."""
    try:
        from cli.main import cli
    except ImportError as exc:
        if exc.name not in {"client.manifest_commands", "client.local_server"}:
            raise
        return click.Group("heartbeats", commands=store_commands.COMMANDS)
    return cli


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    return url


@pytest.fixture
def run(db_url: str):
    runner = CliRunner()
    cli = _heartbeats_cli()

    def invoke(*args: str) -> Result:
        result = runner.invoke(cli, list(args))
        # Whatever happened, a user never sees a traceback.
        assert "Traceback" not in result.output
        if result.exit_code not in (0, 1, 2):
            raise AssertionError(
                f"unexpected exit {result.exit_code}: {result.output}"
            ) from result.exception
        if result.exit_code == 1:
            assert isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def test_both_groups_are_registered_on_the_heartbeats_cli() -> None:
    cli = pytest.importorskip("cli.main").cli
    assert {"tenant", "records"} <= set(cli.commands)
    assert [c.name for c in store_commands.COMMANDS] == ["tenant", "records"]


def test_help_shows_examples(run) -> None:
    for group in ("tenant", "records"):
        result = run(group, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.output
    assert "heartbeats records put --tenant acme" in run("records", "put", "--help").output


# ------------------------------------------------------------------------------- tenant


def test_tenant_set_then_show_json(run) -> None:
    result = run("tenant", "set", "acme", "--timezone", "Europe/Berlin", "--provider", "anthropic")
    assert result.exit_code == 0, result.output
    assert "tenant acme saved" in result.stdout

    # Only the options given change.
    assert run("tenant", "set", "acme", "--model-cheap", "small-1").exit_code == 0

    shown = run("tenant", "show", "acme", "--json")
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["id"] == "acme"
    assert data["timezone"] == "Europe/Berlin"
    assert data["provider"] == "anthropic"
    assert data["model_cheap"] == "small-1"
    assert data["model_premium"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", data["created_at"])


def test_tenant_show_text(run) -> None:
    run("tenant", "set", "acme")
    result = run("tenant", "show", "acme")
    assert result.exit_code == 0
    assert re.search(r"^timezone:\s+UTC$", result.stdout, re.MULTILINE)
    assert re.search(r"^provider:\s+-$", result.stdout, re.MULTILINE)


def test_tenant_set_bad_timezone_is_a_clean_error(run) -> None:
    result = run("tenant", "set", "acme", "--timezone", "Mars/Olympus")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown timezone 'Mars/Olympus'")
    assert "tenant acme" not in run("tenant", "show", "acme").stdout  # nothing was created


def test_tenant_set_bad_id_and_bad_provider(run) -> None:
    bad_id = run("tenant", "set", "Acme")
    assert bad_id.exit_code == 1
    assert "error: tenant id must be lowercase" in bad_id.stderr

    bad_provider = run("tenant", "set", "acme", "--provider", "llama")
    assert bad_provider.exit_code == 2
    assert "Invalid value for '--provider'" in bad_provider.stderr


def test_unknown_tenant_is_a_clean_error(run) -> None:
    result = run("tenant", "show", "ghost", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr
        == "error: unknown tenant 'ghost'; create it first: heartbeats tenant set ghost\n"
    )


def test_unsupported_database_url_is_a_clean_error(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", "mysql://user:hunter2@db/heartbeats")
    result = run("tenant", "show", "acme")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: HEARTBEATS_DATABASE_URL: unsupported database URL scheme"
    )
    assert "hunter2" not in result.output


# ------------------------------------------------------------------------------ records


def test_records_put_and_list_json(run, db_url: str) -> None:
    run("tenant", "set", "acme")
    put = run(
        "records", "put", "--tenant", "acme", "--app", "sales", "--type", "campaign",
        "--id", "spring", "--data", '{"status": "active", "n": 1}',
    )  # fmt: skip
    assert put.exit_code == 0, put.output
    generated = run(
        "records", "put", "--tenant", "acme", "--app", "sales", "--type", "lead",
        "--data", '{"email": "a@example.com"}',
    )  # fmt: skip
    assert generated.exit_code == 0, generated.output
    match = re.search(r"saved lead:([0-9a-f]+) ", generated.stdout)
    assert match and 6 <= len(match.group(1)) <= 16

    listed = run("records", "list", "--tenant", "acme", "--app", "sales", "--json")
    assert listed.exit_code == 0
    records = json.loads(listed.stdout)
    assert [(r["record_type"], r["id"]) for r in records] == [
        ("campaign", "spring"),
        ("lead", match.group(1)),
    ]
    assert records[0]["data"] == {"status": "active", "n": 1}

    only_leads = json.loads(
        run(
            "records", "list", "--tenant", "acme", "--app", "sales", "--type", "lead", "--json"
        ).stdout
    )
    assert [r["id"] for r in only_leads] == [match.group(1)]

    # The record is the kv entry TYPE:ID that apps read through ctx.kv.
    async def read_kv():
        opened = await open_store(db_url)
        try:
            return await opened.kv.get(tenant="acme", app="sales", key="campaign:spring")
        finally:
            await opened.close()

    assert asyncio.run(read_kv()) == {"status": "active", "n": 1}


def test_records_list_table(run) -> None:
    run("tenant", "set", "acme")
    assert run("records", "list", "--tenant", "acme", "--app", "sales").stdout == "no records\n"
    run(
        "records", "put", "--tenant", "acme", "--app", "sales", "--type", "note",
        "--id", "n1", "--data", '{"text": "[red]not markup[/red]"}',
    )  # fmt: skip
    table = run("records", "list", "--tenant", "acme", "--app", "sales").stdout
    assert "note" in table and "n1" in table
    assert "[red]not markup[/red]" in table  # data is printed as typed, never as rich markup


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{bad json", "error: --data is not valid JSON: "),
        ("", "error: --data is not valid JSON: "),
        ("[1, 2]", "error: --data must be a JSON object"),
        ('{"n": NaN}', "error: record data is not JSON-serialisable"),
    ],
)
def test_records_put_bad_data_is_a_clean_error(run, data: str, message: str) -> None:
    run("tenant", "set", "acme")
    result = run(
        "records", "put", "--tenant", "acme", "--app", "sales", "--type", "lead", "--data", data
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert (
        json.loads(run("records", "list", "--tenant", "acme", "--app", "sales", "--json").stdout)
        == []
    )


def test_records_need_a_known_tenant(run) -> None:
    for args in (
        ("records", "put", "--tenant", "ghost", "--app", "sales", "--type", "lead", "--data", "{}"),
        ("records", "list", "--tenant", "ghost", "--app", "sales"),
    ):
        result = run(*args)
        assert result.exit_code == 1
        assert "unknown tenant 'ghost'" in result.stderr
        assert "heartbeats tenant set ghost" in result.stderr


def test_records_put_bad_type_is_a_clean_error(run) -> None:
    run("tenant", "set", "acme")
    result = run(
        "records", "put", "--tenant", "acme", "--app", "sales", "--type", "a:b", "--data", "{}"
    )
    assert result.exit_code == 1
    assert "error: record type must be a non-empty string without ':'" in result.stderr

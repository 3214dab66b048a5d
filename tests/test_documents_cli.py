"""`heartbeats documents list|show` through click's runner on a tmp SQLite file: tables, JSON, and
one-line errors (exit 1, no traceback) for an unknown tenant, document or version."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from store import open_store


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    return url


@pytest.fixture
def run(db_url: str):
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(cli, list(args))
        assert "Traceback" not in result.output
        if result.exit_code not in (0, 1, 2):
            raise AssertionError(f"unexpected exit {result.exit_code}: {result.output}") from result.exception
        if result.exit_code == 1:
            assert isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


@pytest.fixture
def seeded(db_url: str) -> None:
    async def seed() -> None:
        store = await open_store(db_url)
        try:
            await store.tenants.upsert(tenant="acme")
            await store.tenants.upsert(tenant="acme2")
            for status in ("draft", "sent", "paid"):
                await store.documents.write(tenant="acme", app="billing", name="invoice", content={"status": status},
                                            created_by="machine:acme:billing:inv-7")
            await store.documents.write(tenant="acme", app="crm", name="contact", content={"name": "Ada [b]"})
            await store.documents.write(tenant="acme2", app="billing", name="invoice", content={"status": "other"})
        finally:
            await store.close()

    asyncio.run(seed())


def test_documents_is_a_command_of_heartbeats(run) -> None:
    assert "documents" in cli.commands
    result = run("documents", "--help")
    assert result.exit_code == 0 and "Examples:" in result.output
    assert "heartbeats documents show invoice --tenant acme" in run("documents", "show", "--help").output


def test_list_shows_one_line_per_document_of_the_tenant(run, seeded) -> None:
    result = run("documents", "list", "--tenant", "acme")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "billing" in line or "crm" in line]
    assert len(lines) == 2
    assert "invoice" in lines[0] and " 3 " in lines[0] and "contact" in lines[1]

    listed = json.loads(run("documents", "list", "--tenant", "acme", "--json").output)
    assert [(d["app"], d["name"], d["version"]) for d in listed] == [("billing", "invoice", 3), ("crm", "contact", 1)]
    assert listed[0]["updated_at"].endswith("Z")
    only = json.loads(run("documents", "list", "--tenant", "acme", "--app", "crm", "--json").output)
    assert [d["name"] for d in only] == ["contact"]
    other = json.loads(run("documents", "list", "--tenant", "acme2", "--json").output)
    assert [(d["app"], d["name"], d["version"]) for d in other] == [("billing", "invoice", 1)]


def test_list_of_a_tenant_without_documents(run, seeded) -> None:
    assert run("tenant", "set", "empty").exit_code == 0
    assert run("documents", "list", "--tenant", "empty").output.strip() == "no documents"
    assert json.loads(run("documents", "list", "--tenant", "empty", "--json").output) == []


def test_show_prints_the_latest_or_a_version(run, seeded) -> None:
    result = run("documents", "show", "invoice", "--tenant", "acme", "--app", "billing")
    assert result.exit_code == 0, result.output
    assert "version:    3 of 3" in result.output
    assert "by machine:acme:billing:inv-7" in result.output
    assert '"status": "paid"' in result.output

    shown = json.loads(run("documents", "show", "invoice", "--tenant", "acme", "--app", "billing", "--version", "1",
                           "--json").output)
    assert (shown["name"], shown["version"], shown["latest_version"], shown["content"]) == (
        "invoice", 1, 3, {"status": "draft"})
    assert shown["created_at"].endswith("Z") and shown["created_by"] == "machine:acme:billing:inv-7"
    # Content is data, printed as typed.
    assert '"name": "Ada [b]"' in run("documents", "show", "contact", "--tenant", "acme", "--app", "crm").output


@pytest.mark.parametrize(("args", "message"), [
    (("show", "receipt", "--tenant", "acme", "--app", "billing"),
     "error: no document 'receipt' in app 'billing' of tenant 'acme' (its documents: invoice)"),
    (("show", "invoice", "--tenant", "acme", "--app", "billing2"),
     "error: no document 'invoice' in app 'billing2' of tenant 'acme' (its documents: none yet)"),
    (("show", "invoice", "--tenant", "acme", "--app", "billing", "--version", "4"),
     "error: document 'invoice' of app 'billing' has no version 4 (versions 1 to 3)"),
    (("show", "invoice", "--tenant", "nobody", "--app", "billing"),
     "error: unknown tenant 'nobody'; create it first: heartbeats tenant set nobody"),
    (("list", "--tenant", "nobody"), "error: unknown tenant 'nobody'"),
    (("show", "Invoice", "--tenant", "acme", "--app", "billing"), "error: document name must be lowercase"),
    (("list", "--tenant", "acme", "--app", "Billing"), "error: app id must be lowercase"),
])
def test_unknown_or_bad_names_exit_1_with_one_line(run, seeded, args, message) -> None:
    result = run("documents", *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_version_must_be_positive(run, seeded) -> None:
    result = run("documents", "show", "invoice", "--tenant", "acme", "--app", "billing", "--version", "0")
    assert result.exit_code == 2 and "--version" in result.output

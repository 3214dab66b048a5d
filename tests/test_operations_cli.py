"""Operations CLI: list, health, status, runs, run-now, pause, resume, enable.

Offline tests pin the queries, ID checks, error messages and `runs` (store only); the end-to-end
test drives every command against a real dev server with a worker in-process.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from client import temporal as operations
from contract.search_attributes import SA_FAILURE_COUNT, SA_STATUS
from store import open_store
from tests.store_json import jsonable
from tests.temporal_env import free_port as closed_port  # a port nothing listens on

TENANT = "acme"
GOOD = "heartbeat:acme:sales:outreach:daily_cadence"
FIELDS = ["id", "tenant", "app", "agent", "slug", "status", "failure_count", "next_run", "last_run",
          "last_heartbeat_ok_at", "ignored_signals"]  # fmt: skip
RECEIPT_FIELDS = {"at", "trigger", "outcome", "reason", "rows", "escalated", "provider", "model", "tokens_in",
                  "tokens_out", "duration_ms", "error"}  # fmt: skip


def invoke(*args: str) -> Result:
    from cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    return result



@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    return url


# ------------------------------------------------------------------------------------ offline


def test_visibility_queries() -> None:
    base = 'WorkflowType IN ("HeartbeatWorkflow", "TaskWorkflow", "JobWorkflow") AND ExecutionStatus="Running"'
    assert operations.entities_query() == base
    assert operations.entities_query("acme") == base + ' AND HeartbeatTenant="acme"'
    assert operations.failing_query("acme") == (
        base + ' AND HeartbeatTenant="acme" AND HeartbeatStatus="active" AND HeartbeatFailureCount >= 3'
    )
    assert operations.disabled_query() == base + ' AND HeartbeatStatus="disabled"'


def test_a_view_from_search_attributes_has_every_field() -> None:
    attributes = TypedSearchAttributes([SearchAttributePair(SA_STATUS, "disabled"), SearchAttributePair(SA_FAILURE_COUNT, 5)])
    view = operations.view_from_search_attributes(GOOD, attributes).model_dump(mode="json")
    assert list(view) == FIELDS
    assert view == {"id": GOOD, "tenant": "acme", "app": "sales", "agent": "outreach", "slug": "daily_cadence",
                    "status": "disabled", "failure_count": 5, "next_run": None, "last_run": None,
                    "last_heartbeat_ok_at": None, "ignored_signals": []}  # fmt: skip
    assert operations.view_from_search_attributes(GOOD, TypedSearchAttributes([])).status == "active"


@pytest.mark.parametrize("command", ["status", "runs", "run-now", "pause", "resume", "enable"])
@pytest.mark.parametrize("bad", ["acme:sales:outreach:x", "heartbeat:Acme:sales:outreach:x", "heartbeat:a:b:c"])
def test_malformed_ids_are_refused_before_any_call(offline: str, command: str, bad: str) -> None:
    result = invoke(command, bad)
    assert result.exit_code == 1
    assert "not a heartbeat or task workflow ID" in result.output and "heartbeat:TENANT:APP:AGENT:SLUG" in result.output


@pytest.mark.parametrize("args", [["list"], ["health", "--tenant", "acme"], ["status", GOOD], ["run-now", GOOD], ["enable", GOOD]])
def test_temporal_unreachable_is_a_clean_error(offline: str, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 1
    assert "cannot reach Temporal at 127.0.0.1:" in result.output


def test_bad_tenant_filter(offline: str) -> None:
    assert "--tenant" in invoke("list", "--tenant", "Not Valid").output


def test_every_command_has_examples_and_its_temporal_equivalent() -> None:
    expected = {
        "list": "temporal workflow list --query",
        "health": 'temporal workflow list --query \'HeartbeatStatus="disabled"',
        "status": "temporal workflow query --workflow-id heartbeat:demo:sales:outreach:daily_cadence --type status",
        "runs": "temporal workflow show --workflow-id",
        "run-now": "temporal workflow signal --workflow-id heartbeat:demo:sales:outreach:daily_cadence --name run_now",
        "pause": "--name pause",
        "resume": "--name resume",
        "enable": "--name enable",
    }
    for command, line in expected.items():
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output and line in result.output, command


async def seed_receipts(url: str) -> None:
    store = await open_store(url)
    try:
        await store.tenants.upsert(tenant=TENANT)
        start = datetime(2026, 3, 1, 9, tzinfo=UTC)
        for n, outcome in enumerate(["skipped", "substantive", "failed"]):
            await store.receipts.add(
                tenant=TENANT, heartbeat_id=GOOD, tick_id=f"r/{n}", at=start + timedelta(hours=n),
                trigger="schedule" if n < 2 else "run_now", outcome=outcome,
                reason="prefilter_empty" if outcome == "skipped" else None, rows=n,
                error="boom\nline two" if outcome == "failed" else None,
            )  # fmt: skip
    finally:
        await store.close()


def test_runs_lists_receipts_newest_first_from_the_store(offline: str) -> None:
    asyncio.run(seed_receipts(offline))
    result = invoke("runs", GOOD, "--json")
    assert result.exit_code == 0, result.output
    receipts = json.loads(result.output)
    assert [r["at"] for r in receipts] == ["2026-03-01T11:00:00Z", "2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z"]
    assert all(RECEIPT_FIELDS <= set(r) for r in receipts)
    assert receipts[0]["outcome"] == "failed" and receipts[0]["trigger"] == "run_now"
    assert len(json.loads(invoke("runs", GOOD, "--json", "--limit", "1").output)) == 1
    table = invoke("runs", GOOD).output
    assert "prefilter_empty" in table and "boom" in table and "line two" not in table


def test_runs_of_an_unknown_heartbeat(offline: str) -> None:
    result = invoke("runs", "heartbeat:acme:nope:agent:slug")
    assert result.exit_code == 1
    assert "no heartbeat or task workflow heartbeat:acme:nope:agent:slug" in result.output


# ---------------------------------------------------------------- end to end, real Temporal


def manifest_text() -> str:
    return """\
id: sales
name: Sales
version: 1.0.0
agents:
  - id: outreach
    system_prompt: You drive sales cadences.
    heartbeats:
      - slug: daily_cadence
        skill: _internal_app_records
        tool: query
        params: {record_type: campaign, status: active}
        schedule_type: weekly
        day_of_week: 6
        time_of_day: "03:00"
        invoke_always: true
      - slug: broken
        skill: kv
        tool: get
        params: {}          # kv.get needs a key: every tick fails (non-retryable)
        schedule_type: weekly
        day_of_week: 6
        time_of_day: "03:00"
"""


async def wait_for(check, *, timeout: float = 15.0, interval: float = 0.1):
    """Await `check()` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def cli_json(*args: str) -> Any:
    result = await asyncio.to_thread(invoke, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(invoke, *args)


class Harness:
    """A dev server, an in-process worker, tenant `acme` and the sales manifest installed by the CLI."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.url = f"sqlite:///{tmp_path / 'e2e.db'}"

    async def __aenter__(self) -> Harness:
        pytest.importorskip("workflows.heartbeat")
        from tests.temporal_env import dev_server, running_worker

        self.monkeypatch.setenv("HEARTBEATS_DATABASE_URL", self.url)
        self.monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
        self.store = await open_store(self.url)
        await self.store.tenants.upsert(tenant=TENANT, timezone="UTC")
        await self.store.records.put(tenant=TENANT, app="sales", record_type="campaign", record_id="q4",
                                    data={"name": "Q4", "status": "active"})  # fmt: skip
        self._server = dev_server(self.tmp_path)
        self.client, address = await self._server.__aenter__()
        self._worker = running_worker(self.client, self.store)
        await self._worker.__aenter__()
        self.monkeypatch.setenv("TEMPORAL_ADDRESS", address)
        path = self.tmp_path / "sales.yaml"
        path.write_text(manifest_text(), encoding="utf-8")
        installed = await cli("install", str(path), "--tenant", TENANT)
        assert installed.exit_code == 0, installed.output
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._worker.__aexit__(*exc)
            await self._server.__aexit__(*exc)
        finally:
            await self.store.close()

    async def receipts(self, workflow_id: str) -> list[dict[str, Any]]:
        return jsonable(await self.store.receipts.list(tenant=TENANT, heartbeat_id=workflow_id, limit=50))

    async def run_now_and_wait(self, workflow_id: str) -> dict[str, Any]:
        before = len(await self.receipts(workflow_id))
        result = await cli("run-now", workflow_id)
        assert result.exit_code == 0 and f"sent run_now to {workflow_id}" in result.output, result.output
        found = await wait_for(lambda: _newer(self.receipts, workflow_id, before))
        assert found, f"no receipt after run-now of {workflow_id}"
        return found


BROKEN = "heartbeat:acme:sales:outreach:broken"


async def test_list_status_runs_and_signals_on_a_real_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Harness(tmp_path, monkeypatch) as h:
        # list --json: every field of the status view, answered by the workflows.
        views = await wait_for(lambda: _listed(2))
        assert [v["id"] for v in views] == [BROKEN, GOOD]
        assert all(list(v) == FIELDS for v in views)
        assert views[1] | {"next_run": None} == {
            "id": GOOD, "tenant": TENANT, "app": "sales", "agent": "outreach", "slug": "daily_cadence",
            "status": "active", "failure_count": 0, "next_run": None, "last_run": None, "last_heartbeat_ok_at": None,
            "ignored_signals": [],
        }  # fmt: skip
        assert views[1]["next_run"].endswith("T03:00:00Z")
        assert await cli_json("list", "--tenant", "other") == []
        table = (await cli("list")).output
        assert GOOD in table and "active" in table
        assert "all healthy (tenant acme)" in (await cli("health", "--tenant", TENANT)).output

        # run-now → a receipt with trigger run_now; runs and status show it.
        receipt = await h.run_now_and_wait(GOOD)
        assert receipt["trigger"] == "run_now" and receipt["outcome"] == "substantive" and receipt["rows"] == 1
        runs = await cli_json("runs", GOOD)
        assert runs[0]["trigger"] == "run_now" and RECEIPT_FIELDS <= set(runs[0])
        assert "run_now" in (await cli("runs", GOOD)).output
        status = await cli_json("status", GOOD)
        assert list(status) == FIELDS and status["last_run"] is not None and status["status"] == "active"
        assert "last_run:" in (await cli("status", GOOD)).output

        # pause / resume. A paused heartbeat runs no scheduled tick: no next run, in JSON and in tables.
        assert (await cli("pause", GOOD)).exit_code == 0
        assert await wait_for(lambda: _status_is(GOOD, "paused"))
        assert (await cli_json("status", GOOD))["next_run"] is None
        [row] = [line for line in (await cli("list")).output.splitlines() if GOOD in line]
        assert row.count("paused") == 2, row  # the status column and the next-run column
        assert "next_run:             paused" in (await cli("status", GOOD)).output
        assert (await cli("resume", GOOD)).exit_code == 0
        assert await wait_for(lambda: _status_is(GOOD, "active"))
        assert (await cli_json("status", GOOD))["next_run"].endswith("T03:00:00Z")

        # A signal of an unknown name (a typo on the plain temporal path) is not silently lost.
        await h.client.get_workflow_handle(GOOD).signal("runnow")
        assert await wait_for(lambda: _ignored(GOOD, ["runnow"]))
        assert "ignored_signals:      runnow" in (await cli("status", GOOD)).output

        # Unknown and no-longer-running IDs.
        unknown = await cli("status", "heartbeat:acme:sales:outreach:nope")
        assert unknown.exit_code == 1 and "no heartbeat or task workflow heartbeat:acme:sales:outreach:nope" in unknown.output
        assert "no heartbeat or task workflow" in (await cli("run-now", "heartbeat:acme:sales:outreach:nope")).output
        assert (await cli("uninstall", "sales", "--tenant", TENANT)).exit_code == 0
        await wait_for(lambda: _closed(h.client.get_workflow_handle(GOOD)))
        stopped = await cli("pause", GOOD)
        assert stopped.exit_code == 1 and "is not running" in stopped.output
        closed_status = await cli("status", GOOD)
        assert closed_status.exit_code == 1 and "is not running (it is canceled" in closed_status.output
        assert await wait_for(lambda: _listed(0, expect_empty=True))


async def _ignored(workflow_id: str, names: list[str]) -> bool:
    return (await cli_json("status", workflow_id))["ignored_signals"] == names


async def test_health_lists_failing_then_disabled_and_enable_rearms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Harness(tmp_path, monkeypatch) as h:
        # Three failures in a row: failing. Five: disabled. Both listed by health.
        for _ in range(3):
            assert (await h.run_now_and_wait(BROKEN))["outcome"] == "failed"
        health = await wait_for(lambda: _health(lambda found: found["failing"]))
        assert [v["id"] for v in health["failing"]] == [BROKEN] and health["failing"][0]["failure_count"] == 3
        assert health["disabled"] == []
        for _ in range(2):
            assert (await h.run_now_and_wait(BROKEN))["outcome"] == "failed"
        health = await wait_for(lambda: _health(lambda found: found["disabled"] and not found["failing"]))
        assert [v["id"] for v in health["disabled"]] == [BROKEN]
        assert health["disabled"][0]["status"] == "disabled" and health["disabled"][0]["failure_count"] == 5
        table = (await cli("health")).output
        assert "disabled" in table and BROKEN in table

        # A disabled heartbeat refuses run-now, with a receipt; enable re-arms it.
        refused = await h.run_now_and_wait(BROKEN)
        assert (refused["outcome"], refused["reason"]) == ("refused", "disabled")
        assert (await cli("enable", BROKEN)).exit_code == 0
        assert await wait_for(lambda: _status_is(BROKEN, "active"))
        assert (await cli_json("status", BROKEN))["failure_count"] == 0
        healthy = await wait_for(lambda: _health(lambda found: not found["disabled"] and not found["failing"]))
        assert healthy == {"failing": [], "disabled": []}
        assert "all healthy" in (await cli("health")).output


async def _newer(receipts, workflow_id: str, before: int) -> dict[str, Any] | None:
    found = await receipts(workflow_id)
    return found[0] if len(found) > before else None


async def _listed(count: int, *, expect_empty: bool = False) -> Any:
    views = await cli_json("list", "--tenant", TENANT)
    if expect_empty:
        return views == []
    return views if len(views) == count else None


async def _status_is(workflow_id: str, status: str) -> bool:
    return (await cli_json("status", workflow_id))["status"] == status


async def _health(predicate) -> Any:
    found = await cli_json("health", "--tenant", TENANT)
    return found if predicate(found) else None


async def _closed(handle) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

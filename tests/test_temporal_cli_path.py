"""The operator's path on a real dev server: the plain `temporal` CLI signals, queries and lists
heartbeat workflows by their search attributes, and a run-now signal yields a receipt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from contract.heartbeat import HeartbeatConfig, HeartbeatInput
from contract.names import TASK_QUEUE
from contract.search_attributes import SA_AGENT, SA_APP, SA_FAILURE_COUNT, SA_SLUG, SA_STATUS, SA_TENANT
from manifest.models import HeartbeatSpec
from store import open_store
from tests.store_json import jsonable
from tests.temporal_env import dev_server, running_worker
from workflows.heartbeat import HeartbeatWorkflow

TEMPORAL = str(Path(sys.executable).parent / "temporal")


def temporal(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TEMPORAL, *args, "--address", address], capture_output=True, text=True, timeout=60)


async def test_temporal_cli_signal_query_and_list(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    await store.tenants.upsert(tenant="demo", timezone="UTC")
    await store.records.put(tenant="demo", app="marketing", record_type="kpi", record_id="signups",
                           data={"metric": "signups", "value": 182, "target": 250})
    spec = HeartbeatSpec.model_validate({"slug": "hourly_kpi", "skill": "_internal_app_records", "tool": "query",
                                         "params": {"record_type": "kpi"}, "schedule_type": "weekly",
                                         "time_of_day": "03:00", "day_of_week": 6})
    config = HeartbeatConfig(tenant="demo", app="marketing", agent="cmo", heartbeat=spec)
    async with dev_server(tmp_path) as (client, address), running_worker(client, store):
        await client.start_workflow(
            HeartbeatWorkflow.run, HeartbeatInput(config=config), id=config.workflow_id, task_queue=TASK_QUEUE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_TENANT, "demo"), SearchAttributePair(SA_APP, "marketing"), SearchAttributePair(SA_AGENT, "cmo"),
                SearchAttributePair(SA_SLUG, "hourly_kpi"), SearchAttributePair(SA_STATUS, "active"),
                SearchAttributePair(SA_FAILURE_COUNT, 0)]),
            static_summary="marketing/cmo/hourly_kpi: weekly Sun 03:00",
        )
        signal = await asyncio.to_thread(
            temporal, address, "workflow", "signal", "--workflow-id", config.workflow_id, "--name", "run_now")
        assert signal.returncode == 0, signal.stderr
        signalled = time.monotonic()
        receipts = []
        while time.monotonic() - signalled < 10 and not receipts:
            receipts = jsonable(await store.receipts.list(tenant="demo", heartbeat_id=config.workflow_id))
            await asyncio.sleep(0.1)
        assert receipts and receipts[0]["trigger"] == "run_now"
        assert receipts[0]["outcome"] == "substantive" and receipts[0]["rows"] == 1
        assert "signups" in receipts[0]["reply"]  # the pre-filter's rows reached the agent

        query = await asyncio.to_thread(
            temporal, address, "workflow", "query", "--workflow-id", config.workflow_id, "--type", "status",
            "--output", "json")
        assert query.returncode == 0, query.stderr
        view = json.loads(query.stdout)["queryResult"][0]
        assert view["status"] == "active" and view["last_run"] is not None

        listed = []
        for _ in range(50):  # visibility is eventually consistent
            result = await asyncio.to_thread(
                temporal, address, "workflow", "list", "--query",
                'HeartbeatTenant="demo" AND HeartbeatStatus="active"', "--output", "jsonl")
            assert result.returncode == 0, result.stderr
            listed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
            if listed:
                break
            await asyncio.sleep(0.2)
        assert [w["execution"]["workflowId"] for w in listed] == [config.workflow_id]
    await store.close()

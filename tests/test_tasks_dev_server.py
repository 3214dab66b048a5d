"""Tasks end to end on a real dev server: installed by the sync client, run by a real worker whose
agent turns go through the real OpenAI SDK to a loopback server speaking its wire format.

One task listens for an event, polls app records every minute, watches a metric and has a
manual trigger. The same case arriving by event, by a replayed event, by the poll and by a manual
run costs one LLM call; a new case runs; a threshold fires once per crossing and re-arms; a forced
manual run runs a processed case again and its receipt says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.checks import LoadedManifest
from client.ingress import put_metric, send_event, verify_webhook, webhook_secret
from client.operations import heartbeat_runs, heartbeat_status, list_heartbeats, run_task_now
from client.sync import install_manifests, uninstall_apps
from contract.errors import Conflict, InvalidInput, NotFound, Unauthorized
from contract.names import task_workflow_id
from contract.task import ManualRun
from manifest.loader import parse_manifest
from store import Store
from tests.agent_env import loopback_provider, tenant_store
from tests.temporal_env import dev_server, running_worker

TENANT = "acme"
APP = "support"
MANIFEST = """\
id: support
agents:
  - id: reviewer
    system_prompt: You review support cases.
    tools: [records]
    tasks:
      - slug: review_cases
        prompt: Review each new case; reply HEARTBEAT_OK when nothing needs doing.
        dedupe: {key: case_id, ttl_hours: 168}
        triggers:
          - {type: event, event: case.created}
          - type: heartbeat
            interval_minutes: 1
            skill: _internal_app_records
            tool: query
            params: {record_type: case, status: open}
          - {type: threshold, metric: error_rate, above: 0.02}
          - {type: manual}
"""
TASK_ID = task_workflow_id(TENANT, APP, "reviewer", "review_cases")


@pytest.fixture
def provider(monkeypatch):
    with loopback_provider(monkeypatch, "Reviewed; the customer was answered.") as server:
        yield server


@pytest.fixture
async def store(tmp_path):
    async with tenant_store(tmp_path, TENANT) as opened:
        yield opened


def loaded(text: str = MANIFEST) -> list[LoadedManifest]:
    return [LoadedManifest(Path("support.yaml"), parse_manifest(text))]


async def receipts_until(store: Store, count: int, *, trigger: str | None = None, timeout: float = 90) -> list[dict]:
    """The task's receipts (oldest first, of one trigger when given) once there are `count`."""
    found: list[dict] = []
    for _ in range(int(timeout * 10)):
        found = [r.to_json() for r in reversed(await heartbeat_runs(store, TASK_ID, limit=1000))
                 if trigger is None or r.trigger == trigger]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(found)} of {count} receipts after {timeout}s: {found}")


def summary(receipt: dict) -> tuple:
    return receipt["trigger"], receipt["outcome"], receipt["reason"], receipt["cases"], receipt["duplicates"]


async def test_one_case_by_every_trigger_costs_one_llm_call(tmp_path, store, provider):
    async with dev_server(tmp_path) as (client, _), running_worker(client, store):
        [installed] = await install_manifests(client, store, loaded(), tenant=TENANT)
        assert installed.started == [TASK_ID]
        listed = await list_heartbeats(client, tenant=TENANT)
        assert [view.id for view in listed.views] == [TASK_ID]

        def calls() -> int:
            return len(provider.requests_to("openai"))

        # The case arrives by event: it runs (one LLM call).
        first = await send_event(client, store, tenant=TENANT, app=APP, event="case.created",
                                 body={"case_id": "c1", "subject": "refund"}, event_id="evt-1")
        assert (first.tasks, first.duplicate) == ([TASK_ID], False)
        [ran] = await receipts_until(store, 1, trigger="event")
        assert summary(ran) == ("event", "substantive", None, 1, 0) and calls() == 1

        # The sender retries with the same id: the first answer, nothing sent.
        again = await send_event(client, store, tenant=TENANT, app=APP, event="case.created",
                                 body={"case_id": "c1", "subject": "refund"}, event_id="evt-1")
        assert again.to_json() == {**first.to_json(), "duplicate": True}
        with pytest.raises(Conflict):
            await send_event(client, store, tenant=TENANT, app=APP, event="case.created",
                             body={"case_id": "c9"}, event_id="evt-1")

        # A replay under a new id: the same case key, dropped before any LLM call.
        await send_event(client, store, tenant=TENANT, app=APP, event="case.created",
                         body={"case_id": "c1", "subject": "refund"}, event_id="evt-replayed")
        replayed = (await receipts_until(store, 2, trigger="event"))[-1]
        assert summary(replayed) == ("event", "skipped", "duplicate", 1, 1)

        # The poll (every minute) finds it as an open record.
        await store.records.put(tenant=TENANT, app=APP, record_type="case", record_id="c1",
                                data={"case_id": "c1", "status": "open"})
        polls = await receipts_until(store, 1, trigger="heartbeat")
        while polls[-1]["reason"] == "prefilter_empty":  # a poll before the record existed
            polls = await receipts_until(store, len(polls) + 1, trigger="heartbeat")
        assert summary(polls[-1]) == ("heartbeat", "skipped", "duplicate", 1, 1)

        # An operator's manual run with the case.
        await run_task_now(client, TASK_ID, ManualRun(payload={"case_id": "c1"}))
        [manual] = await receipts_until(store, 1, trigger="manual")
        assert summary(manual) == ("manual", "skipped", "duplicate", 1, 1) and not manual["forced"]
        assert calls() == 1

        # A new case runs.
        await send_event(client, store, tenant=TENANT, app=APP, event="case.created", body={"case_id": "c2"})
        assert summary((await receipts_until(store, 3, trigger="event"))[-1]) == ("event", "substantive", None, 1, 0)
        assert calls() == 2
        assert "c2" in provider.requests_to("openai")[-1].body["messages"][-1]["content"]

        # A threshold fires once per crossing, and again only after a value below re-armed it.
        fired = [(await put_metric(client, store, tenant=TENANT, app=APP, metric="error_rate", value=value)).fired
                 for value in (0.01, 0.05, 0.06, 0.01, 0.03)]
        assert fired == [[], [TASK_ID], [], [], [TASK_ID]]
        crossings = await receipts_until(store, 2, trigger="threshold")
        assert [summary(r) for r in crossings] == [("threshold", "substantive", None, 1, 0)] * 2
        assert calls() == 4

        # The operator override: a forced run of a processed case runs it, and says so.
        await run_task_now(client, TASK_ID, ManualRun(payload={"case_id": "c1"}, force=True))
        forced = (await receipts_until(store, 2, trigger="manual"))[-1]
        assert summary(forced) == ("manual", "substantive", None, 1, 0) and forced["forced"] is True
        assert calls() == 5

        view, answered = await heartbeat_status(client, TASK_ID)
        assert answered and view.status == "active" and view.failure_count == 0 and view.next_run is not None

        [removed] = await uninstall_apps(client, store, tenant=TENANT, apps=[APP])
        assert TASK_ID in removed.cancelled


async def test_refusals_start_nothing(tmp_path, store, provider):
    async with dev_server(tmp_path) as (client, _):
        with pytest.raises(NotFound, match="not installed"):
            await send_event(client, store, tenant=TENANT, app=APP, event="case.created", body={})
        await install_manifests(client, store, loaded(), tenant=TENANT)
        with pytest.raises(NotFound, match="listens for event 'case.closed'.*case.created"):
            await send_event(client, store, tenant=TENANT, app=APP, event="case.closed", body={})
        with pytest.raises(NotFound, match="unknown tenant"):
            await send_event(client, store, tenant="acmex", app=APP, event="case.created", body={})
        with pytest.raises(InvalidInput, match="event"):
            await send_event(client, store, tenant=TENANT, app=APP, event="Case Created", body={})
        with pytest.raises(InvalidInput, match="JSON object"):
            await send_event(client, store, tenant=TENANT, app=APP, event="case.created", body=[1])
        with pytest.raises(InvalidInput, match="finite"):
            await put_metric(client, store, tenant=TENANT, app=APP, metric="error_rate", value=float("nan"))
        assert await store.events.bodies(tenant=TENANT, app=APP, event_ids=["evt-1"]) == {}
        assert await store.metrics.last(tenant=TENANT, app=APP, metric="error_rate") is None
        assert await heartbeat_runs(store, TASK_ID, limit=10) == []


async def test_install_covers_tasks_as_it_covers_heartbeats(tmp_path, store):
    async with dev_server(tmp_path) as (client, _):
        [first] = await install_manifests(client, store, loaded(), tenant=TENANT)
        [same] = await install_manifests(client, store, loaded(), tenant=TENANT)
        [changed] = await install_manifests(client, store, loaded(MANIFEST.replace("Review each", "Triage each")),
                                            tenant=TENANT)
        without = MANIFEST.split("    tasks:")[0] + "    heartbeats: []\n"
        [gone] = await install_manifests(client, store, loaded(without), tenant=TENANT)
        summary_text = await (await client.get_workflow_handle(TASK_ID).describe()).static_summary()
    assert first.started == [TASK_ID]
    assert same.app_unchanged and same.started == same.reconfigured == [] and same.unchanged == [TASK_ID]
    assert changed.reconfigured == [TASK_ID]
    assert gone.cancelled == [TASK_ID]
    assert summary_text == ("support/reviewer/review_cases: event case.created; poll every 1 min; error_rate > 0.02;"
                            " manual")


async def test_webhook_signatures(store):
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    await store.apps.record(tenant=TENANT, app=APP, name=APP, version="1",
                            manifest=parse_manifest(MANIFEST).model_dump(mode="json"), manifest_hash="sha256:x")
    with pytest.raises(Unauthorized, match="no webhook secret"):
        await verify_webhook(store, tenant=TENANT, app=APP, body=b"{}", headers={})
    secret = await webhook_secret(store, tenant=TENANT, app=APP)
    assert secret.startswith("whsec_") and await webhook_secret(store, tenant=TENANT, app=APP) == secret
    body = b'{"case_id": "c1"}'

    def headers(key: str, *, at: float | None = None, payload: bytes = body) -> dict[str, str]:
        sent = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
        signature = Webhook(key).sign("msg_1", sent, payload.decode())
        return {"webhook-id": "msg_1", "webhook-timestamp": str(int(sent.timestamp())), "webhook-signature": signature}

    assert await verify_webhook(store, tenant=TENANT, app=APP, body=body, headers=headers(secret)) == "msg_1"
    refused = {
        "tampered": (b'{"case_id": "c2"}', headers(secret)),
        "wrong secret": (body, headers("whsec_" + "A" * 43)),
        "stale": (body, headers(secret, at=datetime.now(UTC).timestamp() - 301)),
        "unsigned": (body, {"webhook-id": "msg_1"}),
        "malformed": (body, {**headers(secret), "webhook-signature": "v1"}),
    }
    for payload, sent in refused.values():
        with pytest.raises(Unauthorized):
            await verify_webhook(store, tenant=TENANT, app=APP, body=payload, headers=sent)
    rotated = await webhook_secret(store, tenant=TENANT, app=APP, rotate=True)
    assert rotated != secret
    with pytest.raises(Unauthorized):
        await verify_webhook(store, tenant=TENANT, app=APP, body=body, headers=headers(secret))
    # A prefix-sharing app of another tenant has its own secret.
    await store.tenants.upsert(tenant="acme2", timezone="UTC")
    with pytest.raises(Unauthorized, match="no webhook secret"):
        await verify_webhook(store, tenant="acme2", app=APP, body=body, headers=headers(rotated))

"""The event and metric endpoints on a real dev server, with a real worker and a real store: an
event posted over HTTP reaches its task (a receipt), by bearer token or by Standard Webhooks
signature; retries answer as the first time; refused requests record nothing; metrics fire
thresholds once per crossing; an Idempotency-Key makes a metric put safe to retry; Temporal
away is a 503 that changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.client import Client

from client.checks import LoadedManifest
from client.ingress import webhook_secret
from client.operations import heartbeat_runs
from client.sync import install_manifests
from drills.provider_server import ProviderServer, text_reply
from manifest.loader import parse_manifest
from store import Store, open_store
from tests.api_env import APP, AUTH, MANIFEST, TASK_ID, TENANT, api_env
from tests.temporal_env import dev_server, running_worker

EVENTS = f"/v1/tenants/{TENANT}/apps/{APP}/events"
METRIC = f"/v1/tenants/{TENANT}/apps/{APP}/metrics/error_rate"


@dataclass
class Installed:
    client: Client
    store: Store
    secret: str


@pytest.fixture
async def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Installed]:
    """Tenant `acme` with app `support` installed on a dev server, a worker, and the app's webhook secret."""
    with ProviderServer(api_key="test-key", fallback=text_reply("Reviewed; the customer was answered.")) as provider:
        for name, value in provider.env().items():
            monkeypatch.setenv(name, value)
        store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
        try:
            await store.tenants.upsert(tenant=TENANT, timezone="UTC", provider="openai")
            async with dev_server(tmp_path) as (client, _), running_worker(client, store):
                await install_manifests(client, store, [LoadedManifest(Path("support.yaml"), parse_manifest(MANIFEST))],
                                        tenant=TENANT)
                yield Installed(client, store, await webhook_secret(store, tenant=TENANT, app=APP))
        finally:
            await store.close()


def signed(secret: str, body: bytes, *, msg_id: str, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
            "Content-Type": "application/json"}


async def receipts(store: Store, count: int) -> list[dict]:
    for _ in range(900):  # a guard against waiting forever, not a speed requirement
        found = [r.to_json() for r in await heartbeat_runs(store, TASK_ID, limit=100)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} receipts for {TASK_ID}")


async def recorded(store: Store, *event_ids: str) -> dict:
    return await store.events.bodies(tenant=TENANT, app=APP, event_ids=list(event_ids))


async def test_events_by_token_and_by_signature(installed: Installed, tmp_path: Path) -> None:
    async with api_env(installed.store, tmp_path, temporal=installed.client) as env:
        # By bearer token, its Idempotency-Key the event's id: the task runs the case.
        case = {"case_id": "c1", "subject": "refund"}
        response = await env.http.post(f"{EVENTS}/case.created", headers={**AUTH, "Idempotency-Key": "evt-1"},
                                       json=case)
        assert response.status_code == 202
        assert response.json() == {"event_id": "evt-1", "event": "case.created", "tasks": [TASK_ID],
                                   "duplicate": False}
        [receipt] = await receipts(installed.store, 1)
        assert (receipt["trigger"], receipt["outcome"], receipt["cases"]) == ("event", "substantive", 1)

        # The retry answers as the first time and delivers nothing; the id with another body is a conflict.
        again = await env.http.post(f"{EVENTS}/case.created", headers={**AUTH, "Idempotency-Key": "evt-1"},
                                    json={"subject": "refund", "case_id": "c1"})
        assert (again.status_code, again.json()) == (202, {**response.json(), "duplicate": True})
        conflict = await env.http.post(f"{EVENTS}/case.created", headers={**AUTH, "Idempotency-Key": "evt-1"},
                                       json={"case_id": "c9"})
        assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "conflict")

        # Without a key the event gets an id of its own.
        fresh = await env.http.post(f"{EVENTS}/case.created", headers=AUTH, json={"case_id": "c2"})
        assert fresh.status_code == 202 and fresh.json()["event_id"].startswith("evt_")

        # Signed with the app's secret, no token: the webhook-id is the event's id.
        body = json.dumps({"case_id": "c3"}).encode()
        response = await env.http.post(f"{EVENTS}/case.created", content=body,
                                       headers=signed(installed.secret, body, msg_id="msg_1"))
        assert response.status_code == 202
        assert (response.json()["event_id"], response.json()["duplicate"]) == ("msg_1", False)
        redelivered = await env.http.post(f"{EVENTS}/case.created", content=body,
                                          headers=signed(installed.secret, body, msg_id="msg_1"))
        assert (redelivered.status_code, redelivered.json()["duplicate"]) == (202, True)

        # Refused: each gets 401 and records nothing.
        tampered = json.dumps({"case_id": "c4", "refund": 1000}).encode()
        stale = datetime.now(UTC) - timedelta(minutes=6)
        refusals = {
            "tampered": (tampered, signed(installed.secret, body, msg_id="msg_tampered")),
            "stale": (body, signed(installed.secret, body, msg_id="msg_stale", at=stale)),
            "wrong secret": (body, signed("whsec_" + "A" * 43 + "=", body, msg_id="msg_wrong")),
            "id only": (body, {"webhook-id": "msg_half"}),
            "bad token, good signature": (body, {**signed(installed.secret, body, msg_id="msg_badtoken"),
                                                 "Authorization": "Bearer nope"}),
            "good token, bad signature": (tampered, {**signed(installed.secret, body, msg_id="msg_badsig"), **AUTH}),
        }
        for name, (content, headers) in refusals.items():
            response = await env.http.post(f"{EVENTS}/case.created", content=content, headers=headers)
            assert response.status_code == 401, (name, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
        assert "5 minutes" in (await env.http.post(
            f"{EVENTS}/case.created", content=body,
            headers=signed(installed.secret, body, msg_id="msg_stale", at=stale))).json()["error"]["message"]
        assert await recorded(installed.store, "msg_tampered", "msg_stale", "msg_wrong", "msg_half", "msg_badtoken",
                              "msg_badsig") == {}

        # What does not exist is a 404; a body that is not an object a 400, before anything is stored.
        for path in (f"{EVENTS}/case.closed", f"/v1/tenants/{TENANT}/apps/billing/events/case.created",
                     f"/v1/tenants/globex/apps/{APP}/events/case.created"):
            response = await env.http.post(path, headers={**AUTH, "Idempotency-Key": "evt-404"}, json=case)
            assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), path
        assert "events listened for: case.created" in (await env.http.post(
            f"{EVENTS}/case.closed", headers=AUTH, json=case)).json()["error"]["message"]
        response = await env.http.post(f"{EVENTS}/case.created", headers={**AUTH, "Idempotency-Key": "evt-list"},
                                       json=[case])
        assert response.status_code == 400
        assert await recorded(installed.store, "evt-404", "evt-list") == {}


async def test_metrics_fire_once_per_crossing_and_retry_safely(installed: Installed, tmp_path: Path) -> None:
    async with api_env(installed.store, tmp_path, temporal=installed.client) as env:
        async def put(value: float, key: str | None = None):
            headers = {**AUTH, "Idempotency-Key": key} if key else AUTH
            return await env.http.post(METRIC, headers=headers, json={"value": value})

        below = await put(0.01, key="m-1")
        assert below.status_code == 200
        assert {k: v for k, v in below.json().items() if k != "at"} == {"metric": "error_rate", "value": 0.01,
                                                                         "fired": []}
        assert (await put(0.05)).json()["fired"] == [TASK_ID]
        assert (await put(0.06)).json()["fired"] == []  # still above: no new crossing

        # The retry of the first put gets its answer, and changes nothing: the last value stays 0.06.
        retried = await put(0.01, key="m-1")
        assert (retried.status_code, retried.json()) == (200, below.json())
        assert retried.headers["idempotent-replayed"] == "true"
        assert await installed.store.metrics.last(tenant=TENANT, app=APP, metric="error_rate") == 0.06
        # The same key with another value is a conflict.
        conflict = await put(0.02, key="m-1")
        assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "conflict")

        # An app that is not installed: 404, and the key is free for a later, different request.
        response = await env.http.post(f"/v1/tenants/{TENANT}/apps/billing/metrics/error_rate",
                                       headers={**AUTH, "Idempotency-Key": "m-2"}, json={"value": 1})
        assert response.status_code == 404
        assert await installed.store.idempotency.claim(tenant=TENANT, app="billing", route="metrics", key="m-2",
                                                       request_hash="x" * 64, now=datetime.now(UTC),
                                                       lease=timedelta(minutes=1)) is None


async def test_temporal_away_is_a_503_that_changes_nothing(installed: Installed, tmp_path: Path) -> None:
    # The same store, but a server whose Temporal address answers nothing.
    async with api_env(installed.store, tmp_path, temporal_address="127.0.0.1:1") as away:
        http = away.http
        response = await http.post(f"{EVENTS}/case.created", headers={**AUTH, "Idempotency-Key": "evt-away"},
                                   json={"case_id": "c1"})
        assert (response.status_code, response.json()["error"]["code"]) == (503, "unavailable")
        assert "cannot reach Temporal at 127.0.0.1:1" in response.json()["error"]["message"]
        assert await recorded(installed.store, "evt-away") == {}

        response = await http.post(METRIC, headers={**AUTH, "Idempotency-Key": "m-away"}, json={"value": 0.5})
        assert response.status_code == 503
        assert await installed.store.metrics.last(tenant=TENANT, app=APP, metric="error_rate") is None

        # Unknown things are still told apart from Temporal's absence.
        response = await http.post(f"{EVENTS}/case.closed", headers=AUTH, json={"case_id": "c1"})
        assert response.status_code == 404

    # Once Temporal is back, the retry with the same key runs.
    async with api_env(installed.store, tmp_path, temporal=installed.client) as env:
        response = await env.http.post(METRIC, headers={**AUTH, "Idempotency-Key": "m-away"}, json={"value": 0.5})
        assert (response.status_code, response.json()["fired"]) == (200, [TASK_ID])


async def test_run_now_over_http(installed: Installed, tmp_path: Path) -> None:
    """A task's manual trigger over HTTP: the payload is the case, a retry with the same key sends
    nothing, `force` runs a processed case again; IDs of another tenant, malformed IDs, a heartbeat
    with a payload and a call without the token are refused."""
    run_now = f"/v1/tenants/{TENANT}/workflows/{TASK_ID}/run-now"
    async with api_env(installed.store, tmp_path, temporal=installed.client) as env:
        first = await env.http.post(run_now, headers={**AUTH, "Idempotency-Key": "r-1"}, json={"payload": {"case_id": "c-h"}})
        assert (first.status_code, first.json()) == (202, {"id": TASK_ID, "forced": False})
        [ran] = await receipts(installed.store, 1)
        assert (ran["trigger"], ran["outcome"], ran["cases"]) == ("manual", "substantive", 1)
        again = await env.http.post(run_now, headers={**AUTH, "Idempotency-Key": "r-1"}, json={"payload": {"case_id": "c-h"}})
        assert (again.status_code, again.headers["idempotent-replayed"]) == (202, "true")
        forced = await env.http.post(run_now, headers=AUTH, json={"payload": {"case_id": "c-h"}, "force": True})
        assert forced.json() == {"id": TASK_ID, "forced": True}
        newest = (await receipts(installed.store, 2))[0]
        assert (newest["outcome"], newest["forced"]) == ("substantive", True)

        other_tenant = TASK_ID.replace(f"task:{TENANT}:", f"task:{TENANT}2:")
        refused = [
            (f"/v1/tenants/{TENANT}/workflows/{other_tenant}/run-now", "{}", AUTH, 404),
            (f"/v1/tenants/{TENANT}2/workflows/{TASK_ID}/run-now", "{}", AUTH, 404),
            (f"/v1/tenants/{TENANT}/workflows/task:{TENANT}:{APP}:reviewer:nope/run-now", "{}", AUTH, 404),
            (f"/v1/tenants/{TENANT}/workflows/not-an-id/run-now", "{}", AUTH, 400),
            (f"/v1/tenants/{TENANT}/workflows/heartbeat:{TENANT}:{APP}:reviewer:x/run-now", '{"force": true}', AUTH, 400),
            (run_now, '{"force": "yes"}', AUTH, 400),
            (run_now, "{}", {}, 401),
        ]
        for path, body, headers, status in refused:
            response = await env.http.post(path, headers={**headers, "Content-Type": "application/json"}, content=body)
            assert response.status_code == status, (path, body, response.text)
            assert set(response.json()["error"]) >= {"code", "message"}
        await asyncio.sleep(1)
        # The retry and the refusals ran nothing: the two runs only.
        assert len(await heartbeat_runs(installed.store, TASK_ID, limit=100)) == 2

"""`heartbeats spend|queue|audit`, `tenant set --price` and the /v1/tenants/{t}/spend|queue|audit
endpoints over a real SQLite store (what the gateway writes is seeded through the store's own
spend area): outputs, refusals with one clear line or a JSON error, tenant isolation with
prefix-sharing ids, and a resolution audited once."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from contract.budget import CeilingReached, SpendEntry, nano_usd
from store import open_store
from tests.api_env import AUTH, api_env


def entry(call: str, *, tenant: str = "acme", model: str = "gpt-5-mini", day: str = "2026-12-01") -> SpendEntry:
    return SpendEntry(tenant=tenant, app="shop", agent="helper", workflow_id=f"heartbeat:{tenant}:shop:helper:loop",
                      purpose="tick", call_key=call, provider="openai", model=model, local_day=day,
                      local_month=day[:7])


async def seed(url: str) -> None:
    store = await open_store(url)
    try:
        for tenant in ("acme", "acme2"):
            await store.tenants.upsert(tenant=tenant, timezone="Europe/Berlin")
        for call, cost in (("c1", "0.10"), ("c2", "0.05")):
            await store.spend.settle(entry(call), tokens_in=1000, tokens_out=100, cache_read_tokens=0,
                                     cache_write_tokens=0, cost_nano=nano_usd(cost))
        await store.spend.settle(entry("x1", tenant="acme2"), tokens_in=1, tokens_out=1, cache_read_tokens=0,
                                 cache_write_tokens=0, cost_nano=nano_usd("9"))
        with pytest.raises(CeilingReached):  # holds the agent: one queue item
            await store.spend.reserve(entry("c3"), reserve_nano=nano_usd("0.1"), daily_nano=None,
                                      monthly_nano=nano_usd("0.2"))
    finally:
        await store.close()


@pytest.fixture
def cli_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    asyncio.run(seed(url))
    return url


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_spend_queue_audit_cli(cli_url):
    by_day = json.loads(run("spend", "--tenant", "acme", "--json"))
    assert by_day == [{"key": "2026-12-01", "calls": 2, "tokens_in": 2000, "tokens_out": 200, "cache_read_tokens": 0,
                       "usd": "0.150000", "unpriced_calls": 0}]
    assert "gpt-5-mini" in run("spend", "--tenant", "acme", "--by", "model")
    assert json.loads(run("spend", "--tenant", "acme2", "--json"))[0]["usd"] == "9.000000"

    [item] = json.loads(run("queue", "list", "--tenant", "acme", "--json"))
    assert (item["kind"], item["subject"], item["status"]) == ("budget_monthly", "shop/helper", "open")
    assert json.loads(run("queue", "list", "--tenant", "acme2", "--json")) == []

    refusals = [
        (["queue", "resolve", str(item["id"]), "--tenant", "acme", "--approve"], "exactly one of"),
        (["queue", "resolve", str(item["id"]), "--tenant", "acme", "--approve", "--approve-once",
          "--raise-monthly-usd", "5"], "exactly one of"),
        (["queue", "resolve", str(item["id"]), "--tenant", "acme", "--reject", "--approve-once"], "--reject takes no"),
        (["queue", "resolve", str(item["id"]), "--tenant", "acme", "--approve", "--raise-monthly-usd", "-3"],
         "more than 0"),
        (["queue", "resolve", str(item["id"]), "--tenant", "acme2", "--approve", "--approve-once"], "no queue item"),
        (["queue", "resolve", "999", "--tenant", "acme", "--reject"], "no queue item"),
        (["spend", "--tenant", "nobody"], "unknown tenant"),
        (["tenant", "set", "acme", "--price", "gpt-x=abc,1"], "not a number"),
        (["tenant", "set", "acme", "--price", "no-equals-sign"], "MODEL=IN,OUT"),
    ]
    for args, message in refusals:
        output = run(*args, code=1)
        assert output.startswith("error: ") and message in output and "Traceback" not in output, output
    assert json.loads(run("audit", "--tenant", "acme", "--json"))[0]["action"] == "budget_monthly"  # nothing else

    resolved = json.loads(run("queue", "resolve", str(item["id"]), "--approve",  # the id alone names it
                              "--raise-monthly-usd", "80", "--json"))
    assert (resolved["status"], resolved["resolved_by"], resolved["resolution"]["raise_monthly_usd"]) == (
        "approved", "operator:cli", "80")
    assert "already resolved" in run("queue", "resolve", str(item["id"]), "--tenant", "acme", "--reject", code=1)
    actions = [e["action"] for e in json.loads(run("audit", "--tenant", "acme", "--json"))]
    assert actions == ["queue_resolve", "budget_monthly"]
    assert json.loads(run("audit", "--tenant", "acme2", "--json")) == []

    run("tenant", "set", "acme", "--price", "house-llm=0.5,1.5", "--price", "other=0,0")
    shown = json.loads(run("tenant", "show", "acme", "--json"))
    assert shown["prices"] == {"house-llm": ["0.5", "1.5"], "other": ["0", "0"]}


async def test_endpoints(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    await seed(url)
    store = await open_store(url)
    try:
        async with api_env(store, tmp_path) as env:
            spent = await env.http.get("/v1/tenants/acme/spend?by=agent", headers=AUTH)
            assert spent.status_code == 200 and spent.json()[0]["key"] == "shop/helper"
            assert (await env.http.get("/v1/tenants/acme/spend?by=week", headers=AUTH)).status_code == 400
            assert (await env.http.get("/v1/tenants/acme/spend")).status_code == 401
            [item] = (await env.http.get("/v1/tenants/acme/queue", headers=AUTH)).json()
            assert (await env.http.get("/v1/tenants/acme2/queue", headers=AUTH)).json() == []
            path = f"/v1/tenants/acme/queue/{item['id']}/resolve"
            other = await env.http.post(f"/v1/tenants/acme2/queue/{item['id']}/resolve", headers=AUTH,
                                        json={"decision": "reject"})
            assert other.status_code == 404
            bad = await env.http.post(path, headers=AUTH, json={"decision": "approve", "raise_monthly_usd": -1})
            assert bad.status_code == 400 and bad.json()["error"]["field"] == "raise_monthly_usd"
            ok = await env.http.post(path, headers=AUTH, json={"decision": "approve", "approve_once": True})
            assert ok.status_code == 200 and ok.json()["resolved_by"] == "api"
            again = await env.http.post(path, headers=AUTH, json={"decision": "reject"})
            assert again.status_code == 409
            audit = (await env.http.get("/v1/tenants/acme/audit", headers=AUTH)).json()
            assert [e["action"] for e in audit] == ["queue_resolve", "budget_monthly"]
            assert not await store.spend.held(tenant="acme", app="shop", agent="helper")
    finally:
        await store.close()

"""Tenant isolation: a heartbeat of one tenant and app, through its pre-filter and every built-in tool,
never reads or writes another tenant's (or app's) records, kv, memory, outbox or conversations.

The tenants and apps share prefixes on purpose (acme / acme2 / acme_, crm / crm2): a query that
matched ids by prefix or LIKE, or forgot one of the two scopes, would leak here. Every tenant and app
holds the same keys (record `lead:l1`, kv `cfg:mode`, a note in memory, an email with the same
idempotency key, a conversation message), each value naming its owner, so a leak shows as a foreign
owner in a result, and a write that crossed over shows as a changed foreign value.
Runs on SQLite and (when reachable) PostgreSQL, via the `store` fixture.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest

from activities.prefilter import run_prefilter
from activities.tools import allowed_skills_for, run_tool_call
from client.install import installed_hash, manifest_json
from contract.messages import PrefilterRequest, TickRef, ToolCallRequest
from contract.names import heartbeat_workflow_id
from manifest.loader import parse_manifest
from skills.catalog import default_registry
from tests.store_json import jsonable

TENANTS = ("acme", "acme2", "acme_")
APPS = ("crm", "crm2")
SCOPES = list(itertools.product(TENANTS, APPS))
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
SHARED_KEY = "shared-idempotency-key"


def manifest_for(tenant: str, app: str):
    # Only acme/crm's bot may delegate to its helper: team membership must come from the caller's install.
    team = "[helper]" if (tenant, app) == ("acme", "crm") else "[]"
    return parse_manifest(f"""\
id: {app}
agents:
  - id: bot
    system_prompt: I am the bot of {tenant}/{app}.
    tools: [records, kv, memory, email, team]
    team: {team}
    heartbeats:
      - slug: leads
        skill: _internal_app_records
        tool: query
        params: {{record_type: lead}}
        interval_minutes: 60
  - id: helper
    system_prompt: I help in {tenant}/{app}.
""")


def owner(tenant: str, app: str) -> str:
    return f"{tenant}/{app}"


@pytest.fixture
async def seeded(store):
    for tenant in TENANTS:
        await store.tenants.upsert(tenant=tenant, timezone="UTC", provider="offline")
    memory_ids = {}
    for tenant, app in SCOPES:
        manifest = manifest_json(manifest_for(tenant, app))
        await store.apps.record(tenant=tenant, app=app, name=app, version="1", manifest=manifest,
                               manifest_hash=installed_hash(manifest, "UTC"))
        who = owner(tenant, app)
        await store.records.put(tenant=tenant, app=app, record_type="lead", record_id="l1",
                               data={"owner": who, "status": "open"})
        await store.kv.set(tenant=tenant, app=app, key="cfg:mode", value={"owner": who})
        memory_ids[(tenant, app)] = await store.memory.add(
            tenant=tenant, app=app, agent="bot", kind="note", content=f"note of {who}", data={"owner": who})
        await store.outbox.queue(tenant=tenant, app=app, agent="bot", idempotency_key=SHARED_KEY,
                                to=f"{tenant}.{app}@example.com", subject=who, body=who)
        conversation = await store.conversations.id_for(tenant=tenant, app=app, agent="bot", mode="dedicated")
        await store.conversations.append(tenant=tenant, conversation_id=conversation, role="assistant",
                                   content=f"said by {who}")
    return memory_ids


def tick(tenant: str, app: str, n: int = 1) -> TickRef:
    return TickRef(heartbeat_id=heartbeat_workflow_id(tenant, app, "bot", "leads"), tenant=tenant, app=app, agent="bot",
                   slug="leads", tick_id=f"run/{n}", at=NOW, trigger="schedule")


async def call(store, tenant: str, app: str, name: str, arguments: dict, key: str = "k") -> dict | list | str:
    skills = default_registry()
    allowed = await allowed_skills_for(store, tenant, app, "bot")
    result = await run_tool_call(store, skills, ToolCallRequest(
        tick=tick(tenant, app), call_id="c", name=name, arguments=arguments, idempotency_key=key),
        allowed_skills=allowed, now=NOW)
    if result.is_error:
        return result.content
    return json.loads(result.content)


def owners_in(value) -> set[str]:
    """Every `tenant/app` owner string mentioned anywhere in a result."""
    text = json.dumps(value) if not isinstance(value, str) else value
    found = set()
    for tenant, app in SCOPES:
        who = owner(tenant, app)
        # Exact token: "acme/crm" must not count as found inside "acme/crm2".
        for quote in ('"', " ", "."):
            if f"{who}{quote}" in text or text.endswith(who):
                found.add(who)
    return found


@pytest.mark.parametrize(("tenant", "app"), SCOPES)
async def test_prefilter_sees_only_its_own_tenant_and_app(store, seeded, tenant, app):
    skills = default_registry()
    sources = [
        ("_internal_app_records", "query", {"record_type": "lead"}),
        ("_internal_app_records", "query", {"record_type": "lead", "owner": owner(tenant, app)}),
        ("_internal_agent_memory", "query", {"kind": "note"}),
        ("records", "query", {"record_type": "lead"}),
        ("kv", "get", {"key": "cfg:mode"}),
        ("kv", "list", {"prefix": "", "include_values": True}),
        ("memory", "query", {}),
    ]
    for n, (skill, tool, params) in enumerate(sources):
        found = await run_prefilter(store, skills, PrefilterRequest(
            tick=tick(tenant, app, n), skill=skill, tool=tool, params=params, invoke_always=True), now=NOW)
        assert found.rows, (skill, tool)
        assert owners_in(found.rows) == {owner(tenant, app)}, (skill, tool, found.rows)
    # A filter naming another tenant's value finds nothing (it does not reach across).
    other = next(o for o in SCOPES if o != (tenant, app))
    found = await run_prefilter(store, skills, PrefilterRequest(
        tick=tick(tenant, app, 99), skill="_internal_app_records", tool="query",
        params={"record_type": "lead", "owner": owner(*other)}, invoke_always=True), now=NOW)
    assert found.rows == []


@pytest.mark.parametrize(("tenant", "app"), SCOPES)
async def test_every_builtin_tool_reads_only_its_own_scope(store, seeded, tenant, app):
    me = owner(tenant, app)
    reads = [
        ("records__query", {"record_type": "lead"}),
        ("kv__get", {"key": "cfg:mode"}),
        ("kv__get", {"key": "lead:l1"}),
        ("kv__list", {"prefix": "", "include_values": True}),
        ("kv__list", {"prefix": "%", "include_values": True}),
        ("memory__query", {}),
        ("memory__query", {"kind": "note", "include_done": True}),
    ]
    for name, arguments in reads:
        result = await call(store, tenant, app, name, arguments)
        assert owners_in(result) <= {me}, (name, result)
    assert owners_in(await call(store, tenant, app, "records__query", {"record_type": "lead"})) == {me}


async def snapshot(store) -> dict:
    """Everything every scope holds, for before/after comparisons."""
    state = {}
    for tenant, app in SCOPES:
        conversation = await store.conversations.id_for(tenant=tenant, app=app, agent="bot", mode="dedicated")
        state[(tenant, app)] = {
            "records": jsonable(await store.records.list(tenant=tenant, app=app)),
            "kv": jsonable(await store.kv.list(tenant=tenant, app=app, prefix="", include_values=True, limit=1000)),
            "memory": jsonable(await store.memory.query(tenant=tenant, app=app, agent="bot", kind=None, now=NOW,
                                               include_done=True, limit=1000)),
            "outbox": jsonable(await store.outbox.list(tenant=tenant, app=app)),
            "messages": jsonable(await store.conversations.messages(tenant=tenant, conversation_id=conversation)),
        }
    return state


@pytest.mark.parametrize(("tenant", "app"), [("acme", "crm"), ("acme_", "crm2")])
async def test_every_builtin_tool_writes_only_its_own_scope(store, seeded, tenant, app):
    before = await snapshot(store)
    foreign_ids = [entry_id for scope, entry_id in seeded.items() if scope != (tenant, app)]
    writes = [
        ("records__upsert", {"record_type": "lead", "id": "l1", "data": {"owner": "overwritten"}}),
        ("records__upsert", {"record_type": "lead", "id": "l2", "data": {"owner": "new"}}),
        ("kv__set", {"key": "cfg:mode", "value": "overwritten"}),
        ("kv__delete", {"key": "lead:l1"}),
        ("memory__write", {"kind": "note", "content": "written"}),
        ("memory__mark_done", {"ids": foreign_ids}),  # other scopes' entry ids: must touch nothing
        ("email__send", {"to": "x@example.com", "subject": "s", "body": "b"}),
    ]
    for index, (name, arguments) in enumerate(writes):
        await call(store, tenant, app, name, arguments, key=f"{SHARED_KEY}" if name == "email__send" else f"k{index}")
    # The same idempotency key as every other scope's email: here it is this scope's own first send.
    sent = await call(store, tenant, app, "email__send", {"to": "y@example.com", "subject": "s", "body": "b"},
                      key="fresh-key")
    assert sent["duplicate"] is False
    after = await snapshot(store)
    for scope in SCOPES:
        if scope != (tenant, app):
            assert after[scope] == before[scope], f"{scope} changed by a tool call of {(tenant, app)}"
    mine = after[(tenant, app)]
    assert not any(entry.get("done_at") for entry in mine["memory"] if "note of" in entry["content"])
    # l1 overwritten, then deleted through kv (the same row); kv key cfg:mode is record (cfg, mode)
    assert {r["id"] for r in mine["records"]} == {"l2", "mode"}
    assert len(mine["outbox"]) == 2  # the seeded one (same key: not sent again) and the fresh one
    assert owners_in(mine) <= {owner(tenant, app)}


async def test_team_delegation_reads_the_callers_install_only(store, seeded):
    # acme/crm's bot may ask its helper; the same call from tenants and apps sharing the prefix may not.
    answer = await call(store, "acme", "crm", "team__delegate", {"agent": "helper", "question": "Status?"})
    assert isinstance(answer, dict) and answer["agent"] == "helper"
    for tenant, app in SCOPES:
        if (tenant, app) == ("acme", "crm"):
            continue
        refused = await call(store, tenant, app, "team__delegate", {"agent": "helper", "question": "Status?"})
        assert isinstance(refused, str) and "not in the team" in refused, (tenant, app, refused)


async def test_an_app_not_installed_for_the_tenant_gets_no_tools(store, seeded):
    # acme2 has crm and crm2; an app id that only differs by suffix (crm3) or another tenant's app is refused.
    for tenant, app in (("acme2", "crm3"), ("acme3", "crm"), ("acm", "crm")):
        assert await allowed_skills_for(store, tenant, app, "bot") == []
        refused = await call(store, tenant, app, "records__query", {"record_type": "lead"})
        assert isinstance(refused, str) and "not available" in refused

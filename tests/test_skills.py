"""The skill registry (risk levels, lookups, argument checks) and the built-in skills on a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from skills.catalog import default_registry
from skills.registry import (
    InvalidArgumentsError,
    Skill,
    SkillContext,
    ToolSpec,
    UnknownSkillError,
    UnknownToolError,
    check_arguments,
)
from store import Store
from tests.store_json import jsonable

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


async def _noop(ctx: SkillContext, args: dict[str, Any]) -> None:
    return None


def _tool(name: str = "ping", risk: str = "LOW", **parameters: Any) -> ToolSpec:
    return ToolSpec(name=name, risk=risk, description="test", parameters={"type": "object", **parameters}, handler=_noop)


def ctx(store: Store, *, tenant: str = "acme", app: str = "crm", agent: str = "bot", key: str | None = None):
    return SkillContext(store=store, tenant=tenant, app=app, agent=agent, now=NOW, idempotency_key=key)


async def call(store: Store, skill: str, tool: str, args: dict[str, Any], **scope: Any) -> Any:
    spec = default_registry().tool(skill, tool)
    return await spec.handler(ctx(store, **scope), check_arguments(spec, args))


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    ("skill", "tool", "problem"),
    [
        ("records", "query", None),
        ("kv", "get", None),
        ("kv", "list", None),
        ("memory", "query", None),
        ("records", "upsert", "records.upsert is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("kv", "set", "kv.set is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("kv", "delete", "kv.delete is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("memory", "write", "memory.write is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("email", "send", "email.send is HIGH risk; pre-filters may only call LOW-risk tools"),
        ("memory", "mark_done", "memory.mark_done is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("team", "delegate", "team.delegate is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("x_api", "search", "unknown skill 'x_api' (registered skills: email, kv, memory, records, tasks, team, workflows)"),
        ("kv", "scan", "skill 'kv' has no tool 'scan' (its tools: delete, get, list, set)"),
    ],
)
def test_prefilter_problem_allows_only_existing_low_risk_tools(skill: str, tool: str, problem: str | None) -> None:
    assert default_registry().prefilter_problem(skill, tool) == problem


def test_builtin_risk_levels() -> None:
    registry = default_registry()
    risks = {
        f"{skill}.{tool}": spec.risk
        for skill in registry.names()
        for tool, spec in registry.get(skill).tools.items()
    }
    assert risks == {
        "records.query": "LOW",
        "records.upsert": "MEDIUM",
        "kv.get": "LOW",
        "kv.list": "LOW",
        "kv.set": "MEDIUM",
        "kv.delete": "MEDIUM",
        "memory.query": "LOW",
        "memory.write": "MEDIUM",
        "memory.mark_done": "MEDIUM",
        "team.delegate": "MEDIUM",
        "email.send": "HIGH",
        "tasks.create": "MEDIUM",
        "tasks.cancel": "MEDIUM",
        "tasks.list": "LOW",
        "workflows.start": "MEDIUM",
    }


def test_lookups_raise_typed_errors() -> None:
    registry = default_registry()
    with pytest.raises(UnknownSkillError, match="unknown skill 'nope'"):
        registry.get("nope")
    with pytest.raises(UnknownToolError, match="its tools: send"):
        registry.tool("email", "receive")
    assert registry.tool("kv", "get").risk == "LOW"
    assert "kv" in registry and "nope" not in registry


def test_register_rejects_duplicates_and_adds_new_skills() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match="skill 'kv' is already registered"):
        registry.register(Skill(name="kv", description="again", tools={"ping": _tool()}))
    registry.register(Skill(name="x_api", description="X", tools={"search_mentions": _tool("search_mentions")}))
    assert registry.prefilter_problem("x_api", "search_mentions") is None
    # Registries are independent: default_registry() builds a new one each time.
    assert "x_api" not in default_registry()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _tool(risk="low"), "risk must be one of LOW, MEDIUM, HIGH"),
        (lambda: _tool(name="Ping"), "tool name must match"),
        (lambda: ToolSpec(name="p", risk="LOW", description="", parameters={"type": "array"}, handler=_noop),
         "JSON schema of type object"),
        (lambda: Skill(name="_internal_x", description="", tools={}), "skill name must match"),
        (lambda: Skill(name="s", description="", tools={"other": _tool("ping")}), "own name"),
    ],
)
def test_specs_validate_themselves(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "arguments must be an object"),
        ({}, "missing required argument"),
        ({"key": "a", "extra": 1}, r"unknown argument\(s\): extra \(it takes: key\)"),
        ({"key": 5}, "argument 'key' must be string"),
    ],
)
def test_check_arguments(args: Any, message: str) -> None:
    spec = default_registry().tool("kv", "get")
    with pytest.raises(InvalidArgumentsError, match=message):
        check_arguments(spec, args)


def test_check_arguments_passes_good_arguments_and_open_schemas() -> None:
    assert check_arguments(default_registry().tool("kv", "get"), {"key": "a"}) == {"key": "a"}
    assert check_arguments(_tool(), {"anything": [1, 2]}) == {"anything": [1, 2]}
    with pytest.raises(InvalidArgumentsError, match="must be boolean"):
        check_arguments(default_registry().tool("kv", "list"), {"include_values": 1})
    with pytest.raises(InvalidArgumentsError, match="'limit' must be integer"):
        check_arguments(default_registry().tool("records", "query"), {"record_type": "kpi", "limit": True})


# -------------------------------------------------------------------------- built-ins


async def test_records_are_scoped_to_the_calling_tenant_and_app(store: Store) -> None:
    for tenant in ("acme", "acme2"):
        await call(store, "records", "upsert", {"record_type": "kpi", "id": "signups",
                                                "data": {"metric": "signups", "owner": tenant}}, tenant=tenant)
    await call(store, "records", "upsert", {"record_type": "kpi", "id": "churn",
                                            "data": {"metric": "churn", "owner": "acme"}}, app="billing")

    assert await call(store, "records", "query", {"record_type": "kpi"}) == [{"metric": "signups", "owner": "acme"}]
    assert await call(store, "records", "query", {"record_type": "kpi"}, tenant="acme2") == [
        {"metric": "signups", "owner": "acme2"}
    ]
    # A filter naming the other tenant's value finds nothing: the scope is not a filter, it is fixed.
    assert await call(store, "records", "query", {"record_type": "kpi", "filters": {"owner": "acme2"}}) == []
    assert await call(store, "records", "query", {"record_type": "kpi"}, app="billing") == [
        {"metric": "churn", "owner": "acme"}
    ]


async def test_records_query_filters_and_limits(store: Store) -> None:
    for number in range(5):
        status = "active" if number % 2 == 0 else "paused"
        await store.records.put(tenant="acme", app="crm", record_type="campaign", record_id=f"c{number}",
                               data={"n": number, "status": status})
    rows = await call(store, "records", "query", {"record_type": "campaign", "filters": {"status": "active"}})
    assert rows == [{"n": 0, "status": "active"}, {"n": 2, "status": "active"}, {"n": 4, "status": "active"}]
    assert len(await call(store, "records", "query", {"record_type": "campaign", "limit": 2})) == 2


async def test_kv_tools_are_scoped_and_work(store: Store) -> None:
    assert await call(store, "kv", "set", {"key": "lead:1", "value": {"stage": "new"}}) == {"key": "lead:1", "written": True}
    await call(store, "kv", "set", {"key": "lead:2", "value": 7})
    await call(store, "kv", "set", {"key": "lead:1", "value": "theirs"}, tenant="acme2")

    assert await call(store, "kv", "get", {"key": "lead:1"}) == {"stage": "new"}
    assert await call(store, "kv", "get", {"key": "lead:1"}, tenant="acme2") == "theirs"
    assert await call(store, "kv", "get", {"key": "missing"}) is None
    assert await call(store, "kv", "list", {"prefix": "lead:"}) == [{"key": "lead:1"}, {"key": "lead:2"}]
    assert await call(store, "kv", "list", {"prefix": "lead:", "include_values": True}, tenant="acme2") == [
        {"key": "lead:1", "value": "theirs"}
    ]
    assert await call(store, "kv", "delete", {"key": "lead:1"}) == {"key": "lead:1", "deleted": True}
    assert await call(store, "kv", "delete", {"key": "lead:1"}) == {"key": "lead:1", "deleted": False}
    assert await call(store, "kv", "get", {"key": "lead:1"}, tenant="acme2") == "theirs"


async def test_memory_tools_see_only_the_calling_agent(store: Store) -> None:
    written = await call(store, "memory", "write",
                         {"kind": "commitment", "content": "follow up Tuesday", "due_at": "2025-03-04T09:00:00Z"})
    assert written["kind"] == "commitment"
    await call(store, "memory", "write", {"kind": "commitment", "content": "other agent's"}, agent="cmo")
    await call(store, "memory", "write", {"kind": "commitment", "content": "other tenant's"}, tenant="acme2")

    [entry] = await call(store, "memory", "query", {"kind": "commitment"})
    assert entry["content"] == "follow up Tuesday"
    assert entry["due_at"] == "2025-03-04T09:00:00Z"
    assert await call(store, "memory", "query", {"kind": "note"}) == []
    with pytest.raises(ValueError, match="must carry a time zone"):
        await call(store, "memory", "write", {"kind": "c", "content": "x", "due_at": "2025-03-04T09:00:00"})


async def test_email_send_queues_once_per_idempotency_key(store: Store) -> None:
    args = {"to": "ceo@example.com", "subject": "KPIs", "body": "Signups are off pace."}
    first = await call(store, "email", "send", args, key="heartbeat:acme:crm:bot:daily/run1/3/step2")
    again = await call(store, "email", "send", args | {"body": "changed on retry"},
                       key="heartbeat:acme:crm:bot:daily/run1/3/step2")
    assert first["duplicate"] is False and again["duplicate"] is True
    assert first["outbox_id"] == again["outbox_id"]
    [outbox] = jsonable(await store.outbox.list(tenant="acme", app="crm"))
    assert outbox["idempotency_key"] == "heartbeat:acme:crm:bot:daily/run1/3/step2"
    assert (outbox["to"], outbox["agent"]) == ("ceo@example.com", "bot")
    assert outbox["body"] == "Signups are off pace."  # the retry wrote nothing
    assert outbox["status"] == "queued"
    assert jsonable(await store.outbox.list(tenant="acme2")) == []
    # The outbox is not app data: the agent's records/kv tools can neither see nor forge it.
    assert jsonable(await store.records.list(tenant="acme", app="crm")) == []

    with pytest.raises(ValueError, match="needs an idempotency key"):
        await call(store, "email", "send", args)
    with pytest.raises(ValueError, match="must be one email address"):
        await call(store, "email", "send", args | {"to": "nobody"}, key="k2")

"""Tools offered to the model and the TOOL_CALL logic (activities.tools) on a real store; app skills.

run_tool_call is called directly (the lead wires it into the activity). Errors the model can fix come
back as is_error results; infrastructure faults propagate so Temporal retries them.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from activities.tools import allowed_skills_for, cap_result, run_tool_call
from client.install import installed_hash
from contract.llm import ToolDef
from contract.messages import MAX_TOOL_RESULT_CHARS, TickRef, ToolCallRequest
from drills.provider_server import ProviderServer, text_reply
from manifest.app import AppManifest
from skills import (
    ENTRY_POINT_GROUP,
    SKILL_MODULES_ENV,
    Skill,
    SkillContext,
    SkillLoadError,
    SkillRegistry,
    ToolSpec,
    default_registry,
    load_app_skills,
)
from store import Store
from tests.store_json import jsonable

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
APP = "marketing"

MANIFEST = {
    "id": APP,
    "name": "Marketing",
    "version": "1.0.0",
    "agents": [
        {"id": "cmo", "is_default": True, "team": ["x_monitor"], "tools": ["records", "memory", "team", "x_api"],
         "system_prompt": "You are the CMO."},
        {"id": "x_monitor", "system_prompt": "You watch X mentions.", "tools": ["records"]},
        {"id": "drafter", "system_prompt": "You draft posts.", "tools": ["records", "kv", "email"]},
    ],
}


def manifest_json(manifest: dict[str, Any] = MANIFEST) -> dict[str, Any]:
    # What `heartbeats install` records: the validated manifest, dumped as JSON.
    return AppManifest.model_validate(manifest).model_dump(mode="json")


async def install(store: Store, tenant: str = "acme", manifest: dict[str, Any] = MANIFEST) -> None:
    await store.tenants.upsert(tenant=tenant, timezone="Europe/Berlin", provider="offline")
    await store.apps.record(tenant=tenant, app=manifest["id"], name="Marketing", version="1.0.0",
                           manifest=manifest_json(manifest),
                           manifest_hash=installed_hash(manifest_json(manifest), "Europe/Berlin"))


def tick(tenant: str = "acme", agent: str = "cmo") -> TickRef:
    return TickRef(heartbeat_id=f"heartbeat:{tenant}:{APP}:{agent}:hourly", tenant=tenant, app=APP, agent=agent,
                   slug="hourly", tick_id="run-1/1", at=NOW, trigger="schedule")


def call(name: str, arguments: dict[str, Any], *, tenant: str = "acme", agent: str = "cmo",
         key: str = "k/1") -> ToolCallRequest:
    t = tick(tenant, agent)
    return ToolCallRequest(tick=t, call_id="call_1", name=name, arguments=arguments,
                           idempotency_key=f"{t.heartbeat_id}/{t.tick_id}/{key}")


async def run(store: Store, request: ToolCallRequest, *, registry: SkillRegistry | None = None,
              allowed: list[str] | None = None):
    t = request.tick
    if allowed is None:
        allowed = await allowed_skills_for(store, t.tenant, t.app, t.agent)
    return await run_tool_call(store, registry or default_registry(app_skills=False), request,
                               allowed_skills=allowed, now=NOW)


# ------------------------------------------------------------------------------ tool defs


def test_tool_defs_are_named_skill__tool_with_schema_and_risk() -> None:
    defs = default_registry(app_skills=False).tool_defs(["records", "email", "not_registered", "records"])
    assert all(isinstance(d, ToolDef) for d in defs)
    assert [d.name for d in defs] == ["records__query", "records__upsert", "email__send"]
    send = defs[-1]
    assert send.parameters["required"] == ["to", "subject", "body"]
    assert send.parameters["additionalProperties"] is False
    assert "Risk: HIGH." in send.description and "outbox" in send.description
    assert "Risk: LOW." in defs[0].description


async def test_tool_defs_per_agent_follow_the_installed_manifest(store: Store) -> None:
    await install(store)
    registry = default_registry(app_skills=False)
    names = {}
    for agent in ("cmo", "x_monitor", "drafter", "nobody"):
        allowed = await allowed_skills_for(store, "acme", APP, agent)
        names[agent] = [d.name for d in registry.tool_defs(allowed)]
    assert names["cmo"] == ["records__query", "records__upsert", "memory__mark_done", "memory__query",
                            "memory__write", "team__delegate"]  # x_api: not on this worker, skipped
    assert names["x_monitor"] == ["records__query", "records__upsert"]
    assert names["drafter"] == ["records__query", "records__upsert", "kv__delete", "kv__get", "kv__list",
                                "kv__set", "email__send"]
    assert names["nobody"] == []
    assert await allowed_skills_for(store, "acme2", APP, "cmo") == []  # not installed there
    await store.apps.mark_uninstalled(tenant="acme", app=APP)
    assert await allowed_skills_for(store, "acme", APP, "cmo") == []


def test_every_builtin_tool_name_is_valid_for_both_providers() -> None:
    import re

    for d in default_registry(app_skills=False).tool_defs(default_registry(app_skills=False).names()):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", d.name)
        assert d.parameters["type"] == "object"


def test_skill_names_cannot_make_tool_names_ambiguous_or_too_long() -> None:
    async def noop(ctx: SkillContext, args: dict[str, Any]) -> None:
        return None

    tool = ToolSpec(name="ping", risk="LOW", description="p", parameters={"type": "object"}, handler=noop)
    with pytest.raises(ValueError, match="must not contain '__'"):
        Skill(name="x__api", description="x", tools={"ping": tool})
    long = ToolSpec(name="p" * 60, risk="LOW", description="p", parameters={"type": "object"}, handler=noop)
    with pytest.raises(ValueError, match="longer than 64"):
        Skill(name="abcdef", description="x", tools={long.name: long})


# ------------------------------------------------------------------------------ scoping


async def test_tools_are_scoped_to_the_ticks_tenant_and_app(store: Store) -> None:
    await install(store, "acme")
    await install(store, "acme2")
    for tenant in ("acme", "acme2"):
        done = await run(store, call("records__upsert", {"record_type": "kpi", "id": "signups",
                                                         "data": {"owner": tenant}}, tenant=tenant))
        assert not done.is_error and json.loads(done.content) == {"record_type": "kpi", "id": "signups",
                                                                  "written": True}
    await store.records.put(tenant="acme", app="sales", record_type="kpi", record_id="x", data={"owner": "sales"})

    for tenant in ("acme", "acme2"):
        found = await run(store, call("records__query", {"record_type": "kpi"}, tenant=tenant))
        assert json.loads(found.content) == [{"owner": tenant}]
    # Arguments choose what, never whose: there is no tenant or app argument to give.
    sneaky = await run(store, call("records__query", {"record_type": "kpi", "tenant": "acme2"}))
    assert sneaky.is_error and "unknown argument(s): tenant" in sneaky.content


async def test_memory_tools_are_scoped_to_the_agent_and_idempotent_per_key(store: Store) -> None:
    await install(store)
    write = call("memory__write", {"kind": "note", "content": "signups lag"}, key="s0/0")
    first, again = await run(store, write), await run(store, write)  # an activity retry
    assert json.loads(first.content) == json.loads(again.content)
    mine = jsonable(await store.memory.query(tenant="acme", app=APP, agent="cmo", kind="note", now=NOW))
    assert [m["content"] for m in mine] == ["signups lag"]
    others = await run(store, call("memory__query", {"kind": "note"}, agent="x_monitor"),
                       allowed=["memory"])
    assert json.loads(others.content) == []


# ----------------------------------------------------------------------- refused calls


@pytest.mark.parametrize(
    ("name", "arguments", "agent", "message"),
    [
        ("email__send", {"to": "a@b.c", "subject": "s", "body": "b"}, "cmo",
         "tool 'email__send' is not available to agent 'cmo': its skills are records, memory, team, x_api"),
        ("records__drop", {}, "cmo", "skill 'records' has no tool 'drop' (its tools: query, upsert)"),
        ("x_api__search_mentions", {"query": "@acme"}, "cmo", "unknown skill 'x_api'"),
        ("records.query", {"record_type": "kpi"}, "cmo", "is not a tool name: tools are named skill__tool"),
        ("records__query", {}, "cmo", "invalid arguments for records__query: query: missing required argument"),
        ("records__query", {"record_type": 7}, "cmo", "argument 'record_type' must be string"),
        ("team__delegate", {"agent": "x_monitor", "question": "hi"}, "drafter", "not available to agent 'drafter'"),
    ],
)
async def test_unknown_forbidden_or_malformed_calls_are_error_results(
    store: Store, name: str, arguments: dict, agent: str, message: str
) -> None:
    await install(store)
    result = await run(store, call(name, arguments, agent=agent))
    assert result.is_error and message in result.content
    assert result.content.startswith("error: ")
    if "not available" in message or "no tool" in message:
        assert "Yours: records__query, records__upsert" in result.content  # what it may call instead


async def test_store_refusals_are_error_results(store: Store) -> None:
    await install(store)
    result = await run(store, call("kv__set", {"key": "k" * 600, "value": 1}, agent="drafter"))
    assert result.is_error and "kv.set refused: key must be at most 512 characters" in result.content


# ------------------------------------------------------------------------------ email


async def test_email_send_twice_with_the_same_key_queues_one_outbox_row(store: Store) -> None:
    await install(store)
    send = call("email__send", {"to": "lead@example.com", "subject": "Hi", "body": "Touch 2"}, agent="drafter",
                key="3/0")
    first, again = await run(store, send), await run(store, send)
    assert not first.is_error and not again.is_error
    assert json.loads(first.content)["duplicate"] is False and json.loads(again.content)["duplicate"] is True
    [row] = jsonable(await store.outbox.list(tenant="acme", app=APP))
    assert (row["to"], row["subject"], row["agent"]) == ("lead@example.com", "Hi", "drafter")
    assert row["idempotency_key"] == "heartbeat:acme:marketing:drafter:hourly/run-1/1/3/0"

    await run(store, call("email__send", {"to": "lead@example.com", "subject": "Hi", "body": "Touch 3"},
                          agent="drafter", key="4/0"))
    assert [r["body"] for r in jsonable(await store.outbox.list(tenant="acme", app=APP))] == ["Touch 2", "Touch 3"]
    assert jsonable(await store.outbox.list(tenant="acme2")) == []

    bad = await run(store, call("email__send", {"to": "not an address", "subject": "s", "body": "b"},
                                agent="drafter"))
    assert bad.is_error and "email.send failed: ValueError: email.send: 'to' must be one email address" in bad.content


# --------------------------------------------------------------------- handler faults


class Flaky:
    """Skill `probe`: `boom` raises what it is told; `big` returns a long string; `odd` returns a set."""

    def __init__(self) -> None:
        self.error: BaseException = RuntimeError("upstream said no")

    def registry(self) -> SkillRegistry:
        async def boom(ctx: SkillContext, args: dict[str, Any]) -> Any:
            raise self.error

        async def big(ctx: SkillContext, args: dict[str, Any]) -> Any:
            return "x" * (MAX_TOOL_RESULT_CHARS * 2)

        async def odd(ctx: SkillContext, args: dict[str, Any]) -> Any:
            return {1, 2}

        schema = {"type": "object"}
        registry = default_registry(app_skills=False)
        registry.register(Skill(name="probe", description="test", tools={
            name: ToolSpec(name=name, risk="LOW", description=name, parameters=schema, handler=handler)
            for name, handler in (("boom", boom), ("big", big), ("odd", odd))
        }))
        return registry


async def test_a_handler_exception_is_an_error_result_naming_the_tool(store: Store) -> None:
    flaky = Flaky()
    result = await run(store, call("probe__boom", {}), registry=flaky.registry(), allowed=["probe"])
    assert result.is_error and result.content == "error: probe.boom failed: RuntimeError: upstream said no"


@pytest.mark.parametrize(
    "error",
    [OperationalError("SELECT 1", {}, Exception("database is locked")), ConnectionResetError("reset"),
     TimeoutError("slow")],
)
async def test_infrastructure_faults_propagate_for_temporal_to_retry(store: Store, error: BaseException) -> None:
    flaky = Flaky()
    flaky.error = error
    with pytest.raises(type(error)):
        await run(store, call("probe__boom", {}), registry=flaky.registry(), allowed=["probe"])


async def test_long_results_are_capped_and_say_so(store: Store) -> None:
    result = await run(store, call("probe__big", {}), registry=Flaky().registry(), allowed=["probe"])
    assert not result.is_error and len(result.content) == MAX_TOOL_RESULT_CHARS
    assert result.content.startswith('"xxx')
    shown, note = result.content.rsplit("\n", 1)
    assert note == f"[truncated: the result has {MAX_TOOL_RESULT_CHARS * 2 + 2} characters; the first {len(shown)} are shown]"
    assert cap_result("short") == "short"


async def test_non_json_results_are_error_results(store: Store) -> None:
    result = await run(store, call("probe__odd", {}), registry=Flaky().registry(), allowed=["probe"])
    assert result.is_error and "returned a result that is not JSON" in result.content


# ------------------------------------------------------------------------------ team


async def test_delegate_only_to_the_callers_team(store: Store) -> None:
    await install(store)
    refused = await run(store, call("team__delegate", {"agent": "drafter", "question": "Draft a post?"}))
    assert refused.is_error
    assert "'drafter' is not in the team of agent 'cmo' (it may ask: x_monitor)" in refused.content
    # acme2 has the app without a team: the same call is refused there.
    lonely = {**MANIFEST, "agents": [{**a, "team": []} for a in MANIFEST["agents"]]}
    await install(store, "acme2", lonely)
    elsewhere = await run(store, call("team__delegate", {"agent": "x_monitor", "question": "Any mentions?"},
                                      tenant="acme2"))
    assert elsewhere.is_error and "(it may ask: nobody)" in elsewhere.content


async def test_delegate_runs_one_isolated_cheap_call_as_the_team_member(store: Store, monkeypatch) -> None:
    """The question goes through the gateway to the tenant's provider (the real OpenAI SDK against
    the loopback server): the member's system prompt, the question alone, no tools, the cheap model."""
    await install(store)
    await store.tenants.upsert(tenant="acme", provider="openai", model_cheap="gpt-test-tiny")
    with ProviderServer(api_key="delegate-key") as server:
        for name, value in server.env(key="delegate-key").items():
            monkeypatch.setenv(name, value)
        server.script_openai(text_reply("3 mentions need a reply.", tokens_in=20, tokens_out=6))
        result = await run(store, call("team__delegate", {"agent": "x_monitor", "question": "Any mentions?"}))
        [sent] = server.requests_to("openai")
    assert not result.is_error
    assert json.loads(result.content) == {"agent": "x_monitor", "answer": "3 mentions need a reply.",
                                          "provider": "openai", "model": "gpt-test-tiny", "tokens_in": 20,
                                          "tokens_out": 6}
    system, question = sent.body["messages"]
    assert system["role"] == "system" and system["content"].startswith("You watch X mentions.")
    assert "'cmo'" in system["content"]
    assert question == {"role": "user", "content": "Any mentions?"}
    assert sent.body["model"] == "gpt-test-tiny" and "tools" not in sent.body


async def test_delegate_with_the_offline_provider_end_to_end(store: Store) -> None:
    await install(store)
    result = await run(store, call("team__delegate", {"agent": "x_monitor", "question": "Any mentions?"}))
    assert not result.is_error
    answer = json.loads(result.content)
    assert (answer["agent"], answer["provider"], answer["model"]) == ("x_monitor", "offline", "offline-cheap")


# ------------------------------------------------------------------------------ app skills

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def example_module(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(TESTS))
    return "example_app_skills"


async def test_app_skills_load_from_the_module_path_variable(
    store: Store, monkeypatch: pytest.MonkeyPatch, example_module: str
) -> None:
    monkeypatch.setenv(SKILL_MODULES_ENV, f" {example_module} ,")
    registry = default_registry()
    assert "x_api" in registry and registry.source("x_api").startswith(f"module '{example_module}'")
    # The LOW tool can be a pre-filter; the HIGH one cannot.
    assert registry.prefilter_problem("x_api", "search_mentions") is None
    assert registry.prefilter_problem("x_api", "post") == (
        "x_api.post is HIGH risk; pre-filters may only call LOW-risk tools")

    await install(store)
    await store.kv.set(tenant="acme", app=APP, key="mention:1", value={"text": "@acme love it"})
    found = await run(store, call("x_api__search_mentions", {"query": "@ACME"}), registry=registry)
    assert json.loads(found.content) == [{"text": "@acme love it"}]
    post = call("x_api__post", {"text": "Thanks!"}, key="5/0")
    assert json.loads((await run(store, post, registry=registry)).content)["duplicate"] is False
    assert json.loads((await run(store, post, registry=registry)).content)["duplicate"] is True


def test_app_skills_load_from_entry_points(example_module: str) -> None:
    entry_point = importlib.metadata.EntryPoint(name="x_api", value=f"{example_module}:skills",
                                                group=ENTRY_POINT_GROUP)
    registry = default_registry(app_skills=False)
    assert load_app_skills(registry, entry_points=[entry_point], modules=[]) == ["x_api"]
    assert registry.source("x_api") == f"entry point 'x_api' ({example_module}:skills) of group {ENTRY_POINT_GROUP}"


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: Any) -> str:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return name


def test_a_module_may_expose_a_single_skill_as_SKILLS(monkeypatch: pytest.MonkeyPatch, example_module: str) -> None:
    from example_app_skills import skills

    name = _module(monkeypatch, "single_skill_mod", SKILLS=skills()[0])
    registry = default_registry(app_skills=False)
    assert load_app_skills(registry, entry_points=[], modules=[name]) == ["x_api"]


def test_app_skill_errors_name_their_source(monkeypatch: pytest.MonkeyPatch, example_module: str) -> None:
    def fresh() -> SkillRegistry:
        return default_registry(app_skills=False)

    with pytest.raises(SkillLoadError, match=r"module 'no_such_mod' \(from HEARTBEATS_SKILL_MODULES\): cannot import"):
        load_app_skills(fresh(), entry_points=[], modules=["no_such_mod"])
    empty = _module(monkeypatch, "empty_mod")
    with pytest.raises(SkillLoadError, match="module 'empty_mod' .*defines neither SKILLS nor skills()"):
        load_app_skills(fresh(), entry_points=[], modules=[empty])
    wrong = _module(monkeypatch, "wrong_mod", SKILLS=["kv"])
    with pytest.raises(SkillLoadError, match="module 'wrong_mod' .*expected a Skill or a list of Skills"):
        load_app_skills(fresh(), entry_points=[], modules=[wrong])

    async def noop(ctx: SkillContext, args: dict[str, Any]) -> None:
        return None

    clash = _module(monkeypatch, "clash_mod", SKILLS=[Skill(name="kv", description="mine", tools={
        "get": ToolSpec(name="get", risk="LOW", description="g", parameters={"type": "object"}, handler=noop)})])
    with pytest.raises(SkillLoadError, match=r"module 'clash_mod' .*skill 'kv' is already registered \(built-in\)"):
        load_app_skills(fresh(), entry_points=[], modules=[clash])

    def raising() -> list[Skill]:
        raise RuntimeError("missing X_API_TOKEN")

    failing = _module(monkeypatch, "failing_mod", skills=raising)
    with pytest.raises(SkillLoadError, match=r"module 'failing_mod' .*skills\(\): raised RuntimeError: missing X_API_TOKEN"):
        load_app_skills(fresh(), entry_points=[], modules=[failing])

    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_mod:skills", group=ENTRY_POINT_GROUP)
    with pytest.raises(SkillLoadError, match=r"entry point 'broken' \(no_such_mod:skills\) .*cannot load it"):
        load_app_skills(fresh(), entry_points=[broken], modules=[])
    twice = importlib.metadata.EntryPoint(name="twice", value=f"{example_module}:skills", group=ENTRY_POINT_GROUP)
    with pytest.raises(SkillLoadError, match=r"module 'example_app_skills' .*'x_api' is already registered \(entry point"):
        load_app_skills(fresh(), entry_points=[twice], modules=[example_module])

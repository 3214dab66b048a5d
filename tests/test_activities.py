"""The heartbeat activities on a real store (SQLite and PostgreSQL), run through ActivityEnvironment."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.agent import offline_reply
from activities.heartbeat_activities import HeartbeatActivities
from activities.ticks import SUMMARY_KIND
from contract.messages import (
    ERROR_BAD_PARAMS,
    ERROR_PREFILTER_FAILED,
    ERROR_TOOL_NOT_ALLOWED,
    ERROR_UNKNOWN_SKILL,
    MAX_PREFILTER_BYTES,
    MAX_PREFILTER_ROWS,
    AgentReply,
    AgentTurnRequest,
    CompleteTickRequest,
    PrefilterRequest,
    ReceiptRequest,
    TickRef,
)
from manifest.models import INTERNAL_AGENT_MEMORY, INTERNAL_APP_RECORDS
from skills.catalog import default_registry
from skills.registry import Skill, SkillContext, ToolSpec
from store import Store
from store.receipts import MAX_REPLY_EXCERPT
from tests.store_json import jsonable

TENANT, APP, AGENT, SLUG = "acme", "marketing", "cmo", "hourly_kpi"
HEARTBEAT_ID = f"heartbeat:{TENANT}:{APP}:{AGENT}:{SLUG}"
AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def tick(n: int = 1, **fields: Any) -> TickRef:
    base = dict(heartbeat_id=HEARTBEAT_ID, tenant=TENANT, app=APP, agent=AGENT, slug=SLUG,
                tick_id=f"run-1/{n}", at=AT + timedelta(hours=n), trigger="schedule")
    return TickRef(**(base | fields))


def prefilter_request(skill: str = INTERNAL_APP_RECORDS, tool: str = "query", params: dict | None = None,
                      *, invoke_always: bool = False, n: int = 1) -> PrefilterRequest:
    return PrefilterRequest(tick=tick(n), skill=skill, tool=tool,
                            params={"record_type": "kpi"} if params is None else params,
                            invoke_always=invoke_always)


def completion_request(text: str, *, mode: str = "dedicated", n: int = 1, rows: int = 3) -> CompleteTickRequest:
    reply = AgentReply(text=text, provider="offline", model="offline-cheap", tokens_in=40, tokens_out=12)
    return CompleteTickRequest(tick=tick(n), reply=reply, rows=rows, conversation_mode=mode, duration_ms=120)


class Probe:
    """Test skill `probe` with a LOW tool `rows` (returns what it is told) and a MEDIUM tool `poke`."""

    def __init__(self) -> None:
        self.contexts: list[SkillContext] = []
        self.result: Any = [{"ok": True}]
        self.error: BaseException | None = None

    def skill(self) -> Skill:
        async def rows(ctx: SkillContext, args: dict[str, Any]) -> Any:
            self.contexts.append(ctx)
            if self.error is not None:
                raise self.error
            return self.result

        async def poke(ctx: SkillContext, args: dict[str, Any]) -> Any:  # pragma: no cover - never allowed
            raise AssertionError("a MEDIUM tool must never run as a pre-filter")

        schema = {"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": False}
        return Skill(name="probe", description="test", tools={
            "rows": ToolSpec(name="rows", risk="LOW", description="rows", parameters=schema, handler=rows),
            "poke": ToolSpec(name="poke", risk="MEDIUM", description="poke", parameters=schema, handler=poke),
        })


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def acts(store: Store, probe: Probe) -> HeartbeatActivities:
    registry = default_registry()
    registry.register(probe.skill())
    return HeartbeatActivities(store, registry)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def retry_env(attempt: int = 2) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=attempt)
    return environment


async def receipts(store: Store) -> list[dict]:
    return jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=HEARTBEAT_ID, limit=100))


async def put_kpis(store: Store, tenant: str = TENANT) -> None:
    for metric, value, target, status in (("signups", 182, 250, "off_pace"), ("churn", 2.1, 3.0, "on_pace"),
                                          ("mrr", 41000, 40000, "on_pace"), ("trials", 12, 30, "off_pace")):
        await store.records.put(tenant=tenant, app=APP, record_type="kpi", record_id=metric,
                               data={"metric": metric, "value": value, "target": target, "status": status})


def test_all_registers_every_activity_the_workflows_call(acts: HeartbeatActivities) -> None:
    from contract import names as contract

    names = sorted(fn.__temporal_activity_definition.name for fn in acts.all())
    called = sorted({contract.PREFILTER, contract.AGENT_TURN, contract.AGENT_STEP, contract.TOOL_CALL,
                     contract.COMPLETE_TICK, contract.RECORD_RECEIPT, contract.WAKE_VISION,
                     contract.RECORD_VISION_PLAN, contract.TASK_POLL, contract.TASK_CASES, contract.JOB_ENDED,
                     contract.MACHINE_CALL})
    assert names == called


# ------------------------------------------------------------------------- pre-filter: sources


async def test_app_records_with_filters_return_exactly_the_matching_rows(store, acts, env) -> None:
    await put_kpis(store)
    await put_kpis(store, tenant="acme2")  # same records for another tenant: never seen
    await store.records.put(tenant=TENANT, app=APP, record_type="campaign", record_id="c1",
                           data={"metric": "signups", "status": "off_pace"})

    found = await env.run(acts.prefilter, prefilter_request(params={"record_type": "kpi", "status": "off_pace"}))
    assert found.rows == [
        {"metric": "signups", "value": 182, "target": 250, "status": "off_pace"},
        {"metric": "trials", "value": 12, "target": 30, "status": "off_pace"},
    ]
    assert (found.truncated, found.receipt_written) == (False, False)

    typed = await env.run(acts.prefilter, prefilter_request(params={"record_type": "kpi", "value": 182}))
    assert [row["metric"] for row in typed.rows] == ["signups"]
    assert await receipts(store) == []  # rows found: the receipt comes at the end of the tick


async def test_row_cap_keeps_50_of_200_and_says_truncated(store, acts, env) -> None:
    for number in range(200):
        await store.records.put(tenant=TENANT, app=APP, record_type="kpi", record_id=f"k{number:03d}",
                               data={"n": number, "status": "open"})
    found = await env.run(acts.prefilter, prefilter_request(params={"record_type": "kpi", "status": "open"}))
    assert len(found.rows) == MAX_PREFILTER_ROWS == 50
    assert found.rows[0] == {"n": 0, "status": "open"} and found.rows[-1] == {"n": 49, "status": "open"}
    assert found.truncated is True


async def test_exactly_50_rows_is_not_truncated(store, acts, env) -> None:
    for number in range(50):
        await store.records.put(tenant=TENANT, app=APP, record_type="kpi", record_id=f"k{number:03d}", data={"n": number})
    found = await env.run(acts.prefilter, prefilter_request())
    assert (len(found.rows), found.truncated) == (50, False)


async def test_byte_cap_drops_rows_past_64_kib(store, acts, env) -> None:
    for number in range(10):
        await store.records.put(tenant=TENANT, app=APP, record_type="note", record_id=f"n{number}",
                               data={"n": number, "text": "x" * 10_000})
    found = await env.run(acts.prefilter, prefilter_request(params={"record_type": "note"}))
    assert len(found.rows) == 6 and found.truncated is True
    assert len(json.dumps(found.rows, separators=(",", ":")).encode()) <= MAX_PREFILTER_BYTES


async def test_agent_memory_sees_only_this_agents_entries(store, acts, env) -> None:
    mine = await store.memory.add(tenant=TENANT, app=APP, agent=AGENT, kind="commitment", content="follow up Tue")
    await store.memory.add(tenant=TENANT, app=APP, agent=AGENT, kind="note", content="another kind")
    await store.memory.add(tenant=TENANT, app=APP, agent="drafter", kind="commitment", content="other agent")
    await store.memory.add(tenant=TENANT, app="sales", agent=AGENT, kind="commitment", content="other app")
    await store.memory.add(tenant="acme2", app=APP, agent=AGENT, kind="commitment", content="other tenant")
    await store.memory.add(tenant=TENANT, app=APP, agent=AGENT, kind="commitment", content="expired",
                           expires_at=datetime.now(UTC) - timedelta(minutes=1))

    found = await env.run(acts.prefilter, prefilter_request(INTERNAL_AGENT_MEMORY, params={"kind": "commitment"}))
    assert [(row["id"], row["content"]) for row in found.rows] == [(mine, "follow up Tue")]


async def test_agent_memory_refuses_an_agent_in_params(acts, env) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.prefilter, prefilter_request(INTERNAL_AGENT_MEMORY, params={"kind": "c", "agent": "x"}))
    assert caught.value.type == ERROR_BAD_PARAMS and caught.value.non_retryable
    assert "always the heartbeat's own" in caught.value.message


async def test_low_risk_skill_tool_runs_scoped_to_the_tick(probe, acts, env) -> None:
    probe.result = [{"mention": "@acme great"}, {"mention": "@acme help"}]
    found = await env.run(acts.prefilter, prefilter_request("probe", "rows", {"q": "@acme"}))
    assert found.rows == probe.result and not found.truncated
    [ctx] = probe.contexts
    assert (ctx.tenant, ctx.app, ctx.agent) == (TENANT, APP, AGENT)
    assert ctx.idempotency_key == f"{HEARTBEAT_ID}/run-1/1/prefilter"


async def test_builtin_low_tools_work_as_prefilters(store, acts, env) -> None:
    await store.kv.set(tenant=TENANT, app=APP, key="lead:1", value={"stage": "new"})
    found = await env.run(acts.prefilter, prefilter_request("kv", "list", {"prefix": "lead:", "include_values": True}))
    assert found.rows == [{"key": "lead:1", "value": {"stage": "new"}}]
    one = await env.run(acts.prefilter, prefilter_request("kv", "get", {"key": "lead:1"}))
    assert one.rows == [{"stage": "new"}]


@pytest.mark.parametrize(
    ("skill", "tool", "error_type", "message"),
    [
        ("probe", "poke", ERROR_TOOL_NOT_ALLOWED, "probe.poke is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("kv", "set", ERROR_TOOL_NOT_ALLOWED, "kv.set is MEDIUM risk; pre-filters may only call LOW-risk tools"),
        ("email", "send", ERROR_TOOL_NOT_ALLOWED, "email.send is HIGH risk; pre-filters may only call LOW-risk tools"),
        ("x_api", "search_mentions", ERROR_UNKNOWN_SKILL, "unknown skill 'x_api'"),
        ("probe", "nope", ERROR_UNKNOWN_SKILL, "skill 'probe' has no tool 'nope' (its tools: poke, rows)"),
    ],
)
async def test_refused_skill_tools_fail_non_retryable_with_a_stable_type(
    store, acts, env, skill: str, tool: str, error_type: str, message: str
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.prefilter, prefilter_request(skill, tool, {}))
    assert caught.value.type == error_type
    assert caught.value.non_retryable is True
    assert message in caught.value.message
    assert jsonable(await store.kv.list(tenant=TENANT, app=APP)) == []  # nothing ran


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (prefilter_request(params={"status": "x"}), "needs params.record_type"),
        (prefilter_request(params={"record_type": "kpi", "tags": ["a"]}), "filter tags"),
        (prefilter_request(tool="list"), 'has only the tool "query"'),
        (prefilter_request("probe", "rows", {"q": 1}), "probe.rows: argument 'q' must be string"),
        (prefilter_request("probe", "rows", {"z": 1}), "unknown argument(s): z"),
    ],
)
async def test_bad_params_fail_non_retryable(acts, env, request_: PrefilterRequest, message: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.prefilter, request_)
    assert (caught.value.type, caught.value.non_retryable) == (ERROR_BAD_PARAMS, True)
    assert message in caught.value.message


async def test_a_failing_skill_is_an_app_fault(probe, acts, env) -> None:
    probe.error = RuntimeError("upstream API rejected the query " + "x" * 1000)
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.prefilter, prefilter_request("probe", "rows", {}))
    assert (caught.value.type, caught.value.non_retryable) == (ERROR_PREFILTER_FAILED, True)
    assert caught.value.message.startswith("probe.rows failed: RuntimeError: upstream API rejected the query")
    assert len(caught.value.message) <= 300

    probe.error, probe.result = None, [{"at": datetime.now(UTC)}]  # not JSON
    with pytest.raises(ApplicationError, match="not JSON") as caught:
        await env.run(acts.prefilter, prefilter_request("probe", "rows", {}))
    assert caught.value.type == ERROR_PREFILTER_FAILED


@pytest.mark.parametrize(
    "error",
    [OperationalError("SELECT 1", {}, Exception("server closed the connection")), ConnectionRefusedError(111, "refused")],
)
async def test_infrastructure_faults_stay_retryable(probe, acts, env, error: BaseException) -> None:
    probe.error = error
    with pytest.raises(type(error)):
        await env.run(acts.prefilter, prefilter_request("probe", "rows", {}))


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:////nonexistent-dir/heartbeats.db", "postgresql+asyncpg://nobody@127.0.0.1:1/none"]
)
async def test_an_unreachable_database_is_retryable_not_an_app_fault(env, url: str) -> None:
    unreachable = Store(create_async_engine(url))
    try:
        acts = HeartbeatActivities(unreachable, default_registry())
        with pytest.raises((DBAPIError, OSError)):
            await env.run(acts.prefilter, prefilter_request())
        with pytest.raises((DBAPIError, OSError)):
            await env.run(acts.prefilter, prefilter_request(INTERNAL_AGENT_MEMORY, params={"kind": "c"}))
    finally:
        await unreachable.close()


# --------------------------------------------------------------------- pre-filter: empty ticks


async def test_empty_prefilter_writes_one_skipped_receipt_even_when_retried(store, acts, env) -> None:
    request = prefilter_request(params={"record_type": "kpi", "status": "off_pace"})
    first = await env.run(acts.prefilter, request)
    again = await retry_env().run(acts.prefilter, request)  # Temporal retrying after a lost result
    assert first.model_dump() == again.model_dump() == {"rows": [], "truncated": False, "receipt_written": True}
    [receipt] = await receipts(store)
    assert receipt | {"duration_ms": 0} == {
        "tick_id": "run-1/1",
        "at": "2025-03-01T10:00:00Z",
        "trigger": "schedule",
        "outcome": "skipped",
        "reason": "prefilter_empty",
        "rows": 0,
        "escalated": False,
        "provider": None,
        "model": None,
        "tokens_in": 0,
        "tokens_out": 0,
        "duration_ms": 0,
        "error": None,
        "reply": None,
        "cases": 0,
        "duplicates": 0,
        "forced": False,
        "usd": None,  # a no-op tick: no LLM call, nothing in the spend ledger
    }


async def test_empty_prefilter_with_invoke_always_wakes_the_agent(store, acts, env) -> None:
    found = await env.run(acts.prefilter, prefilter_request(invoke_always=True))
    assert found.model_dump() == {"rows": [], "truncated": False, "receipt_written": False}
    assert await receipts(store) == []


# ------------------------------------------------------------------------------- offline agent


def agent_request(rows: list, *, truncated: bool = False, tier: str = "cheap") -> AgentTurnRequest:
    return AgentTurnRequest(tick=tick(), rows=rows, truncated=truncated, prompt="Review KPI delta.",
                            model_tier=tier, conversation_mode="dedicated")


async def test_offline_agent_says_ok_when_there_is_nothing(acts, env) -> None:
    reply = await env.run(acts.agent_turn, agent_request([], tier="premium"))
    assert (reply.text, reply.provider, reply.model) == ("HEARTBEAT_OK", "offline", "offline-premium")
    assert reply.tokens_out == len("HEARTBEAT_OK") // 4


async def test_offline_agent_summarises_the_rows_it_got(acts, env) -> None:
    rows = [
        {"metric": "signups", "value": 182, "target": 250},
        {"metric": "trials", "value": 12, "target": 30},
        {"metric": "churn", "value": 2.1, "target": 3.0},
        {"metric": "mrr", "value": 41000, "target": 40000},
    ]
    reply = await env.run(acts.agent_turn, agent_request(rows))
    assert reply.text == (
        "4 rows to review: signups: value 182, target 250; trials: value 12, target 30;"
        " churn: value 2.1, target 3.0; and 1 more."
    )
    assert (reply.provider, reply.model) == ("offline", "offline-cheap")
    assert reply.tokens_in > 0 and reply.tokens_out == len(reply.text) // 4
    # Deterministic: the same rows give the same reply.
    assert offline_reply(agent_request(rows)) == reply


async def test_offline_agent_on_memory_rows_and_truncation() -> None:
    reply = offline_reply(agent_request([{"id": 7, "kind": "commitment", "content": "follow up Tuesday",
                                          "due_at": None, "created_at": "2025-03-01T09:00:00Z"}], truncated=True))
    assert reply.text == "1+ rows to review: follow up Tuesday: id 7, kind commitment."
    assert "none fit" in offline_reply(agent_request([], truncated=True)).text


# ------------------------------------------------------------------------------- complete tick


async def conversation(store: Store, mode: str = "dedicated") -> list[dict]:
    conversation_id = await store.conversations.id_for(tenant=TENANT, app=APP, agent=AGENT, mode=mode)
    return jsonable(await store.conversations.messages(tenant=TENANT, conversation_id=conversation_id, limit=50))


async def summaries(store: Store) -> list[dict]:
    return jsonable(await store.memory.query(tenant=TENANT, app=APP, agent=AGENT, kind=SUMMARY_KIND, now=datetime.now(UTC)))


async def test_suppressed_reply_leaves_only_a_receipt(store, acts, env) -> None:
    done = await env.run(acts.complete_tick, completion_request("  **HEARTBEAT_OK** nothing new "))
    assert (done.outcome, done.escalated) == ("suppressed", False)
    [receipt] = await receipts(store)
    assert receipt["outcome"] == "suppressed" and receipt["reason"] is None
    assert (receipt["provider"], receipt["model"], receipt["tokens_in"], receipt["tokens_out"]) == (
        "offline", "offline-cheap", 40, 12)
    assert (receipt["rows"], receipt["duration_ms"]) == (3, 120)
    assert receipt["reply"] == "**HEARTBEAT_OK** nothing new"
    assert await conversation(store) == [] and await summaries(store) == []


async def test_substantive_reply_is_written_once_even_when_run_twice(store, acts, env) -> None:
    text = "2 KPIs off pace: signups 182 (target 250); trials 12 (target 30).\nDetails follow."
    request = completion_request(text)
    first = await env.run(acts.complete_tick, request)
    again = await retry_env().run(acts.complete_tick, request)
    assert first == again and (first.outcome, first.escalated) == ("substantive", False)

    [message] = await conversation(store)
    assert (message["role"], message["content"]) == ("assistant", text)
    [summary] = await summaries(store)
    assert summary["content"] == "2 KPIs off pace: signups 182 (target 250); trials 12 (target 30)."
    assert summary["data"] == {"heartbeat_id": HEARTBEAT_ID, "tick_id": "run-1/1", "escalated": False}
    [receipt] = await receipts(store)
    assert (receipt["outcome"], receipt["escalated"], receipt["reply"]) == ("substantive", False, text)

    # The next tick saying the same thing is a new message, not a duplicate.
    await env.run(acts.complete_tick, completion_request(text, n=2))
    assert [m["content"] for m in await conversation(store)] == [text, text]
    assert len(await receipts(store)) == 2


async def test_a_tick_completes_whole_or_not_at_all(store, acts, env) -> None:
    """A failure after the receipt and the message were written leaves neither; the retry writes
    each once. The memory table is moved away so that the summary's write fails for real."""
    text = "Signups are off pace. I'll follow up on Tuesday."
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE agent_memory RENAME TO agent_memory_away")
    with pytest.raises(DBAPIError):
        await env.run(acts.complete_tick, completion_request(text))
    assert await receipts(store) == [] and await conversation(store) == []
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE agent_memory_away RENAME TO agent_memory")

    done = await retry_env().run(acts.complete_tick, completion_request(text))
    assert done.outcome == "substantive"
    assert [m["content"] for m in await conversation(store)] == [text]
    assert len(await summaries(store)) == 1 and len(await receipts(store)) == 1


async def test_escalation_sets_the_flag_and_keeps_the_message(store, acts, env) -> None:
    done = await env.run(acts.complete_tick, completion_request("HEARTBEAT_OK <escalate-to-vision/>"))
    assert (done.outcome, done.escalated) == ("substantive", True)
    [receipt] = await receipts(store)
    assert (receipt["outcome"], receipt["escalated"]) == ("substantive", True)
    [message] = await conversation(store)
    assert message["content"] == "HEARTBEAT_OK"  # the control tag is not part of the message
    [summary] = await summaries(store)
    assert summary["data"]["escalated"] is True


@pytest.mark.parametrize(("mode", "persisted"), [("dedicated", "dedicated"), ("main", "main"), ("isolated", None)])
async def test_conversation_modes(store, acts, env, mode: str, persisted: str | None) -> None:
    await env.run(acts.complete_tick, completion_request("Campaign B stalled.", mode=mode))
    for thread in ("dedicated", "main"):
        expected = ["Campaign B stalled."] if thread == persisted else []
        assert [m["content"] for m in await conversation(store, thread)] == expected
    assert len(await summaries(store)) == 1  # memory writeback in every mode


async def test_long_replies_are_excerpted_on_the_receipt(store, acts, env) -> None:
    text = "Summary line\n" + "y" * 3000
    await env.run(acts.complete_tick, completion_request(text))
    [receipt] = await receipts(store)
    assert len(receipt["reply"]) == MAX_REPLY_EXCERPT and receipt["reply"].endswith("…")
    assert (await conversation(store))[0]["content"] == text  # the thread keeps all of it


async def test_summary_line_is_capped(store, acts, env) -> None:
    await env.run(acts.complete_tick, completion_request("\n\n" + "z" * 500))
    [summary] = await summaries(store)
    assert len(summary["content"]) == 200


# ------------------------------------------------------------------------------ record receipt


async def test_record_receipt_is_idempotent_and_caps_the_error(store, acts, env) -> None:
    request = ReceiptRequest(tick=tick(trigger="run_now"), outcome="failed", reason=ERROR_PREFILTER_FAILED,
                             error="boom " * 1000, duration_ms=5)
    assert await env.run(acts.record_receipt, request) is True
    assert await retry_env().run(acts.record_receipt, request) is False
    [receipt] = await receipts(store)
    assert (receipt["outcome"], receipt["reason"], receipt["trigger"]) == ("failed", ERROR_PREFILTER_FAILED, "run_now")
    assert len(receipt["error"]) == 2000


async def test_record_receipt_refusal_is_non_retryable(acts, env) -> None:
    bad = ReceiptRequest(tick=tick(tenant="acme2"), outcome="refused", reason="disabled")
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.record_receipt, bad)
    assert (caught.value.type, caught.value.non_retryable) == ("StoreRejected", True)

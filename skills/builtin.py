"""The built-in skills: records, kv, memory, team, email, tasks. Every handler is scoped to ctx.tenant and
ctx.app (memory also to ctx.agent): the arguments can choose what to read or write, never whose.

Handlers stay small and return JSON values (they travel through workflow history and to the model).
Side-effecting handlers are idempotent per `ctx.idempotency_key` (a retried tool call does its effect
once): records.upsert, kv.set/delete and memory.mark_done are by nature; memory.write keys its entry
on the call's key; email.send keys its outbox row on it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from commitments import COMMITMENT_EXPIRY, COMMITMENT_KIND
from contract.errors import NotFound
from contract.job import MAX_ACTIVE_JOBS_PER_AGENT, MAX_JOBS_CREATED_PER_RUN
from contract.llm import ChatMessage, LlmRequest
from contract.machine import new_run
from contract.messages import MAX_TOKENS_PER_CALL
from contract.task import MAX_CASE_PAYLOAD_CHARS, DelegatedCase, TaskConfig, case_key
from manifest.ids import id_problem
from providers.charging import charging_for
from providers.gateway import Caller, call_llm
from providers.routing import resolve_for_tenant
from skills.registry import Skill, SkillContext, ToolSpec
from skills.runtime_tasks import cancel_runtime_task, create_runtime_task, list_runtime_tasks
from store.installed import installed_app

MAX_TOOL_LIMIT = 100  # rows any one read tool returns
MAX_DELEGATE_QUESTION_CHARS = 4_000
MAX_DELEGATE_ANSWER_CHARS = 4_000
DELEGATE_TIER = "cheap"
MAX_EMAIL_BODY_CHARS = 20_000


def _schema(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_TOOL_LIMIT, "description": "At most this many rows."}


def _limit(args: dict[str, Any], default: int = 50) -> int:
    return max(1, min(int(args.get("limit", default)), MAX_TOOL_LIMIT))


# ------------------------------------------------------------------------------------- records


async def _records_query(ctx: SkillContext, args: dict[str, Any]) -> list[Any]:
    return await ctx.store.records.query(
        tenant=ctx.tenant,
        app=ctx.app,
        record_type=args["record_type"],
        filters=args.get("filters") or {},
        limit=_limit(args),
    )


async def _records_upsert(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.store.records.put(
        tenant=ctx.tenant, app=ctx.app, record_type=args["record_type"], record_id=args["id"], data=args["data"]
    )
    return {"record_type": args["record_type"], "id": args["id"], "written": True}


def records_skill() -> Skill:
    return Skill(
        name="records",
        description="The app's own records (typed JSON objects), shared with kv: record (type, id) is kv key 'type:id'.",
        tools={
            "query": ToolSpec(
                name="query",
                risk="LOW",
                description="The data of records of one type whose top-level fields equal the given filters.",
                parameters=_schema(
                    {
                        "record_type": {"type": "string", "description": "e.g. 'kpi', 'campaign'"},
                        "filters": {
                            "type": "object",
                            "description": "Field -> value (string, number, boolean or null); all must be equal.",
                        },
                        "limit": _LIMIT,
                    },
                    "record_type",
                ),
                handler=_records_query,
            ),
            "upsert": ToolSpec(
                name="upsert",
                risk="MEDIUM",
                description="Create or replace the record (record_type, id) with `data` (a JSON object).",
                parameters=_schema(
                    {
                        "record_type": {"type": "string"},
                        "id": {"type": "string"},
                        "data": {"type": "object"},
                    },
                    "record_type",
                    "id",
                    "data",
                ),
                handler=_records_upsert,
            ),
        },
    )


# ------------------------------------------------------------------------------------------ kv


async def _kv_get(ctx: SkillContext, args: dict[str, Any]) -> Any:
    # The bare value (None when missing): as a pre-filter, a missing key means "nothing found".
    return await ctx.store.kv.get(tenant=ctx.tenant, app=ctx.app, key=args["key"])


async def _kv_list(ctx: SkillContext, args: dict[str, Any]) -> list[dict[str, Any]]:
    entries = await ctx.store.kv.list(
        tenant=ctx.tenant,
        app=ctx.app,
        prefix=args.get("prefix", ""),
        include_values=bool(args.get("include_values", False)),
        limit=_limit(args),
    )
    return [entry.to_json() for entry in entries]


async def _kv_set(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    await ctx.store.kv.set(tenant=ctx.tenant, app=ctx.app, key=args["key"], value=args["value"])
    return {"key": args["key"], "written": True}


async def _kv_delete(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    deleted = await ctx.store.kv.delete(tenant=ctx.tenant, app=ctx.app, key=args["key"])
    return {"key": args["key"], "deleted": deleted}


def kv_skill() -> Skill:
    key = {"type": "string", "description": "e.g. 'lead:42'"}
    return Skill(
        name="kv",
        description="The app's key-value store: any JSON value under a string key.",
        tools={
            "get": ToolSpec(
                name="get",
                risk="LOW",
                description="The value stored under `key`, or null.",
                parameters=_schema({"key": key}, "key"),
                handler=_kv_get,
            ),
            "list": ToolSpec(
                name="list",
                risk="LOW",
                description="Entries whose key starts with `prefix`, by key; with their values if asked.",
                parameters=_schema(
                    {
                        "prefix": {"type": "string", "description": "Literal key prefix; '' lists all."},
                        "include_values": {"type": "boolean"},
                        "limit": _LIMIT,
                    }
                ),
                handler=_kv_list,
            ),
            "set": ToolSpec(
                name="set",
                risk="MEDIUM",
                description="Store `value` (any JSON) under `key`, replacing what was there.",
                parameters=_schema({"key": key, "value": {}}, "key", "value"),
                handler=_kv_set,
            ),
            "delete": ToolSpec(
                name="delete",
                risk="MEDIUM",
                description="Delete `key`; says whether it existed.",
                parameters=_schema({"key": key}, "key"),
                handler=_kv_delete,
            ),
        },
    )


# -------------------------------------------------------------------------------------- memory


async def _memory_query(ctx: SkillContext, args: dict[str, Any]) -> list[dict[str, Any]]:
    entries = await ctx.store.memory.query(
        tenant=ctx.tenant,
        app=ctx.app,
        agent=ctx.agent,
        kind=args.get("kind"),
        now=ctx.now,
        limit=_limit(args),
        due_only=bool(args.get("due_only", False)),
        include_done=bool(args.get("include_done", False)),
    )
    return [entry.to_json() for entry in entries]


async def _memory_write(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    due_at = _parse_time(args.get("due_at"), "due_at")
    expires_at = _parse_time(args.get("expires_at"), "expires_at")
    if args["kind"] == COMMITMENT_KIND and due_at is not None and expires_at is None:
        expires_at = due_at + COMMITMENT_EXPIRY  # the same rule as inferred commitments
    entry_id = await ctx.store.memory.add(
        tenant=ctx.tenant,
        app=ctx.app,
        agent=ctx.agent,
        kind=args["kind"],
        content=args["content"],
        data=args.get("data"),
        due_at=due_at,
        expires_at=expires_at,
        # A retried call (same key) finds the entry its first attempt wrote.
        dedupe_key=f"tool:{ctx.idempotency_key}" if ctx.idempotency_key else None,
    )
    return {"id": entry_id, "kind": args["kind"]}


async def _memory_mark_done(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    ids = args["ids"]
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise ValueError(f"memory.mark_done: 'ids' must be a non-empty list of entry ids (got {ids!r})")
    done = await ctx.store.memory.mark_done(tenant=ctx.tenant, app=ctx.app, agent=ctx.agent, ids=ids, at=ctx.now)
    return {"done": done, "not_found": sorted(set(ids) - set(done))}


def _parse_time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} must be an ISO 8601 time such as 2025-03-01T09:00:00Z (got {value!r})") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} must carry a time zone, e.g. a trailing Z (got {value!r})")
    return parsed


def memory_skill() -> Skill:
    expiry_days = COMMITMENT_EXPIRY // timedelta(days=1)
    return Skill(
        name="memory",
        description="This agent's memory: notes, summaries, commitments. Only the calling agent's entries.",
        tools={
            "query": ToolSpec(
                name="query",
                risk="LOW",
                description=(
                    "This agent's unexpired memory entries, newest first, optionally of one kind."
                    " Entries marked done are left out unless include_done."
                ),
                parameters=_schema(
                    {
                        "kind": {"type": "string", "description": "e.g. 'commitment', 'heartbeat_summary'"},
                        "due_only": {
                            "type": "boolean",
                            "description": "Only entries due now (due_at passed, or no due_at), most overdue first.",
                        },
                        "include_done": {"type": "boolean"},
                        "limit": _LIMIT,
                    }
                ),
                handler=_memory_query,
            ),
            "write": ToolSpec(
                name="write",
                risk="MEDIUM",
                description=(
                    "Write a memory entry for this agent (e.g. kind 'commitment' with a due_at; a commitment"
                    f" expires {expiry_days} days after its due time unless expires_at is given)."
                ),
                parameters=_schema(
                    {
                        "kind": {"type": "string"},
                        "content": {"type": "string"},
                        "data": {"description": "Optional structured payload (any JSON)."},
                        "due_at": {"type": "string", "description": "ISO 8601 with zone, e.g. 2025-03-04T09:00:00Z"},
                        "expires_at": {"type": "string", "description": "ISO 8601 with zone; omitted = never"},
                    },
                    "kind",
                    "content",
                ),
                handler=_memory_write,
            ),
            "mark_done": ToolSpec(
                name="mark_done",
                risk="MEDIUM",
                description="Mark entries of this agent done by id (e.g. a commitment you have kept).",
                parameters=_schema(
                    {"ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1}},
                    "ids",
                ),
                handler=_memory_mark_done,
            ),
        },
    )


# ---------------------------------------------------------------------------------------- team


async def _team_delegate(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    if ("question" in args) == ("task" in args):
        raise ValueError("team.delegate: give either 'question' (ask an agent of your team) or 'task' (hand a case"
                         " to another agent's task), not both or neither")
    if "task" in args:
        return await _delegate_to_task(ctx, args)
    target, question = args["agent"], args["question"].strip()
    if not question:
        raise ValueError("team.delegate: 'question' must not be empty")
    if len(question) > MAX_DELEGATE_QUESTION_CHARS:
        raise ValueError(f"team.delegate: 'question' is longer than {MAX_DELEGATE_QUESTION_CHARS} characters")
    installed = await installed_app(ctx.store, tenant=ctx.tenant, app=ctx.app, manifest_hash=ctx.definition)
    caller = installed.agent(ctx.agent) if installed is not None else None
    team = list(caller.team) if caller is not None else []
    if target not in team:
        raise ValueError(
            f"team.delegate: {target!r} is not in the team of agent {ctx.agent!r}"
            f" (it may ask: {', '.join(team) or 'nobody'})"
        )
    assert installed is not None
    member = installed.agent(target)
    if member is None:  # the manifest rules forbid this; a hand-edited row could still have it
        raise ValueError(f"team.delegate: app {ctx.app!r} has no agent {target!r}")

    tenant = await ctx.store.tenants.get(tenant=ctx.tenant)
    provider, model = resolve_for_tenant(tenant, DELEGATE_TIER)
    system = "\n\n".join(
        part
        for part in (
            member.system_prompt,
            f"Agent {ctx.agent!r} of your team asks you the question below. Answer it directly and briefly;"
            " you have no tools in this exchange.",
        )
        if part
    )
    # One isolated call: no history, no tools (so a delegation can never fan out into more).
    response = await call_llm(
        LlmRequest(
            provider=provider,
            model=model,
            system=system,
            messages=[ChatMessage(role="user", content=question)],
            max_tokens=MAX_TOKENS_PER_CALL,
        ),
        # Charged to the asking agent's run, under the tool call's own key (one ledger row per call).
        caller=Caller(tenant=ctx.tenant, app=ctx.app, agent=ctx.agent, workflow_id=ctx.workflow_id,
                      purpose="delegate", call_key=f"{ctx.idempotency_key}/delegate" if ctx.idempotency_key else "",
                      at=ctx.now),
        charging=charging_for(ctx.store.spend, caller, ctx.workflow_id, timezone=tenant.timezone if tenant else "UTC",
                              prices=tenant.prices if tenant else {}),
    )
    return {
        "agent": target,
        "answer": response.text[:MAX_DELEGATE_ANSWER_CHARS],
        "provider": response.provider,
        "model": response.model,
        "tokens_in": response.tokens_in,
        "tokens_out": response.tokens_out,
    }


async def _delegate_to_task(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    """Hand a case to another agent's task through its `a2a` trigger; returns at once."""
    target, slug, key = args["agent"], args["task"], args.get("key")
    payload = args.get("input")
    if len(json.dumps(payload, ensure_ascii=False, default=str)) > MAX_CASE_PAYLOAD_CHARS:
        raise ValueError(f"team.delegate: 'input' must be at most {MAX_CASE_PAYLOAD_CHARS} characters as JSON")
    installed = await installed_app(ctx.store, tenant=ctx.tenant, app=ctx.app, manifest_hash=ctx.definition)
    caller = installed.agent(ctx.agent) if installed is not None else None
    member = installed.agent(target) if installed is not None else None
    task = next((t for t in member.tasks if t.slug == slug), None) if member is not None else None
    if installed is None or caller is None or member is None or task is None:
        raise ValueError(f"team.delegate: agent {target!r} of app {ctx.app!r} has no task {slug!r}")
    triggers = task.triggers_of("a2a")
    if not triggers:
        raise ValueError(f"team.delegate: task {slug!r} of agent {target!r} takes no delegations (no a2a trigger)")
    allowed = any(ctx.agent in trigger.from_ if trigger.from_ is not None else target in caller.team
                  for trigger in triggers)
    if not allowed:
        named = [name for trigger in triggers for name in (trigger.from_ or [])]
        rule = f"it takes them from {', '.join(named)}" if named else f"{target!r} is not in your team"
        raise ValueError(f"team.delegate: agent {ctx.agent!r} may not delegate to task {slug!r} ({rule})")
    tenant = await ctx.store.tenants.get(tenant=ctx.tenant)
    config = TaskConfig(tenant=ctx.tenant, app=ctx.app, agent=target, tenant_timezone=tenant.timezone if tenant else "UTC",
                        task=task)
    # Stable across retries of this tool call: a retried delegation is the same case.
    delegation = "dlg_" + hashlib.sha256((ctx.idempotency_key or ctx.run_id or "").encode()).hexdigest()[:20]
    await _workflows(ctx, "team.delegate").delegate(
        config, DelegatedCase(delegation_id=delegation, from_agent=ctx.agent, input=payload, key=key))
    return {"delegated": True, "task": config.workflow_id,
            "case": key or case_key(payload, task.dedupe.key, default=delegation)}


def team_skill() -> Skill:
    return Skill(
        name="team",
        description="Ask other agents of this app. Only agents in the caller's `team` list (manifest).",
        tools={
            "delegate": ToolSpec(
                name="delegate",
                # Not LOW: it runs an LLM call, and pre-filters must stay zero-LLM. No data changes.
                risk="MEDIUM",
                description=(
                    "Ask one agent of your team a question (give 'question'): returns its answer, from one"
                    " isolated turn (its own system prompt, no history, no tools, cheap tier). Or hand a case"
                    " to one of another agent's tasks (give 'task' and 'input'): returns at once with"
                    " {delegated, task, case}; the task runs it once, however often it is handed over."
                ),
                parameters=_schema(
                    {
                        "agent": {"type": "string", "description": "Id of an agent in your team, e.g. 'x_monitor'."},
                        "question": {"type": "string", "description": "Self-contained: it sees nothing else."},
                        "task": {"type": "string", "description": "Instead of a question: the slug of one of the"
                                 " agent's tasks to hand a case to (through its a2a trigger)."},
                        "input": {"description": "With task: the case, e.g. {\"case_id\": \"c-42\"}."},
                        "key": {"type": "string", "description": "With task: the case's key (default: the task's"
                                " dedupe key in the input, else the delegation's id)."},
                    },
                    "agent",
                ),
                handler=_team_delegate,
            ),
        },
    )


# --------------------------------------------------------------------------------------- email


async def _email_send(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    # No mail leaves the machine: the message goes to the outbox table, keyed by the call's
    # idempotency key. A retried call finds its row and writes nothing, so it is never queued twice
    # (nor reset to "queued" after something downstream marked it sent).
    if not ctx.idempotency_key:
        raise ValueError("email.send needs an idempotency key (so a retry never sends twice)")
    to = args["to"].strip()
    if "@" not in to or any(c.isspace() for c in to) or len(to) > 320:
        raise ValueError(f"email.send: 'to' must be one email address (got {args['to']!r})")
    if len(args["body"]) > MAX_EMAIL_BODY_CHARS:
        raise ValueError(f"email.send: 'body' is longer than {MAX_EMAIL_BODY_CHARS} characters")
    outbox_id, created = await ctx.store.outbox.queue(
        tenant=ctx.tenant,
        app=ctx.app,
        agent=ctx.agent,
        idempotency_key=ctx.idempotency_key,
        to=to,
        subject=args["subject"],
        body=args["body"],
    )
    return {"queued": True, "outbox_id": outbox_id, "duplicate": not created}


def email_skill() -> Skill:
    return Skill(
        name="email",
        description="Send email. Queues it in the platform's outbox; nothing leaves the machine from here.",
        tools={
            "send": ToolSpec(
                name="send",
                risk="HIGH",
                description="Queue an email to `to` with `subject` and `body` (plain text).",
                parameters=_schema(
                    {
                        "to": {"type": "string", "description": "One address, e.g. lead@example.com"},
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                    },
                    "to",
                    "subject",
                    "body",
                ),
                handler=_email_send,
            ),
        },
    )


# --------------------------------------------------------------------------------------- tasks


def _workflows(ctx: SkillContext, tool: str):
    if ctx.workflows is None:
        raise ValueError(f"{tool} is not available in this context (no Temporal client)")
    return ctx.workflows


async def _tasks_create(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    created = await create_runtime_task(
        ctx.store, _workflows(ctx, "tasks.create"), tenant=ctx.tenant, app=ctx.app, agent=ctx.agent, key=args["key"],
        prompt=args["prompt"], params=args.get("params"), in_=args.get("in"), at=args.get("at"),
        cron=args.get("cron"), every=args.get("every"), created_by=ctx.workflow_id or "agent",
        created_in=ctx.run_id, now=ctx.now)
    return _task_result(created.to_json())


async def _tasks_cancel(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    cancelled = await cancel_runtime_task(ctx.store, _workflows(ctx, "tasks.cancel"), tenant=ctx.tenant, app=ctx.app,
                                          agent=ctx.agent, key=args["key"])
    return _task_result(cancelled.to_json())


async def _tasks_list(ctx: SkillContext, args: dict[str, Any]) -> list[dict[str, Any]]:
    found = await list_runtime_tasks(ctx.store, tenant=ctx.tenant, app=ctx.app, agent=ctx.agent,
                                     status=args.get("status", "active"), now=ctx.now)
    return [_task_result(view.to_json()) for view in found[: _limit(args)]]


def _task_result(task: dict[str, Any]) -> dict[str, Any]:
    # What the model needs; the tenant and app are its own.
    return {name: task[name] for name in ("created", "key", "status", "timing", "next_run", "prompt", "params")
            if name in task}


def tasks_skill() -> Skill:
    timing = {
        "in": {"type": "string", "description": "One-shot after a delay: 30m, 2h, 3d, 1w."},
        "at": {"type": "string", "description": "One-shot at an ISO 8601 time; without an offset, the tenant's local time."},
        "cron": {"type": "string", "description": "Recurring, 5-field cron in the tenant's local time, e.g. '0 9 * * 1-5'."},
        "every": {"type": "string", "description": "Recurring: every 5m..366d, e.g. 3d (days keep the local time of day)."},
    }
    return Skill(
        name="tasks",
        description=(f"Schedule your own follow-ups: one-shot or recurring runtime tasks, each a later turn of you"
                     f" with its prompt and params. Keys are unique per agent; at most {MAX_ACTIVE_JOBS_PER_AGENT}"
                     f" active, {MAX_JOBS_CREATED_PER_RUN} created per run."),
        tools={
            "create": ToolSpec(
                name="create",
                risk="MEDIUM",  # it makes the agent act again later, on its own
                description=("Create a runtime task: give a key and exactly one of in, at (one-shot), cron, every"
                             " (recurring). Creating an existing key returns that task and changes nothing"
                             " (created: false)."),
                parameters=_schema({
                    "key": {"type": "string", "description": "Unique per agent: lowercase letters, digits, '_' or"
                            " '-', starting with a letter, e.g. 'follow-up-ada'."},
                    "prompt": {"type": "string", "description": "What to do when it runs (your own instruction)."},
                    "params": {"type": "object", "description": "Data the run gets with the prompt."},
                    **timing,
                }, "key", "prompt"),
                handler=_tasks_create,
            ),
            "cancel": ToolSpec(
                name="cancel",
                risk="MEDIUM",
                description="Cancel one of your runtime tasks by key (an ended one stays as it is).",
                parameters=_schema({"key": {"type": "string"}}, "key"),
                handler=_tasks_cancel,
            ),
            "list": ToolSpec(
                name="list",
                risk="LOW",
                description="Your runtime tasks (active by default) with their timing and next run.",
                parameters=_schema({
                    "status": {"type": "string", "enum": ["active", "done", "cancelled"]},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_TOOL_LIMIT},
                }),
                handler=_tasks_list,
            ),
        },
    )


# ----------------------------------------------------------------------------------- workflows


async def _workflows_start(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    installed = await installed_app(ctx.store, tenant=ctx.tenant, app=ctx.app)
    if installed is None:
        raise ValueError(f"app {ctx.app!r} is not installed")
    key = args.get("key")
    if key is None:
        if not ctx.idempotency_key:
            raise ValueError("workflows.start needs a key here (no call key to derive one from)")
        # One run per tool call: a retried call names the same run, which starts once.
        key = "a" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:24]
    reason = id_problem(key)
    if reason:
        raise ValueError(f"key {reason}")
    try:
        run = new_run(installed.manifest, manifest_hash=installed.manifest_hash, tenant=ctx.tenant, app=ctx.app,
                      workflow=args["workflow"], key=key, variables=args.get("variables"))
    except NotFound as exc:
        raise ValueError(str(exc)) from None
    started = await _workflows(ctx, "workflows.start").start_machine(run)
    return {"id": run.workflow_id, "workflow": run.workflow, "key": key, "started": started}


def workflows_skill() -> Skill:
    return Skill(
        name="workflows",
        description=("Start the app's state-machine workflows: deterministic runs of tools (and agent steps) with"
                     " retries, manual approvals and deadlines; cheaper than doing each step yourself."),
        tools={
            "start": ToolSpec(
                name="start",
                risk="MEDIUM",  # it sets work in motion in the app
                description=("Start a run of one of the app's workflows by name, with context.variables. Give a"
                             " key to name the run (a key runs once: starting it again returns started: false)."),
                parameters=_schema({
                    "workflow": {"type": "string", "description": "The workflow's name in the app's manifest."},
                    "key": {"type": "string", "description": "Names the run: lowercase letters, digits, '_' or"
                            " '-', starting with a letter (default: one per call)."},
                    "variables": {"type": "object", "description": "The run's context.variables."},
                }, "workflow"),
                handler=_workflows_start,
            ),
        },
    )


def builtin_skills() -> list[Skill]:
    """Fresh instances of every built-in skill."""
    return [records_skill(), kv_skill(), memory_skill(), team_skill(), email_skill(), tasks_skill(),
            workflows_skill()]

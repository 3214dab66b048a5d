"""Test tools for state-machine workflows, named as the spec's examples name them.

Loadable as app skills (HEARTBEATS_SKILL_MODULES=tests.machine_skills) by a worker subprocess, or
registered in-process with `registry()`. Each call is recorded in `CALLS` (in-process) and in the
app's kv under `call:{idempotency key}` (any process), so tests can count what ran and in what order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from skills import Skill, SkillContext, ToolSpec
from skills.catalog import default_registry
from skills.registry import SkillRegistry

# The app of the workflow tests and recorded histories: the spec's document-processing example, and
# one workflow per behaviour (nextPlace, a manual transition with a deadline, fan-out, compensation,
# retry).
FLOWS = """
id: flows
version: 1.0.0
workflows:
  - name: document_processor_workflow
    title: "Document Processing Workflow"
    type: stateMachine
    transitions:
      - name: extract_data
        from: start
        to: data_extracted
        call:
          - tool: data_extraction_tool
            arguments:
              source: ${ context.variables.SOURCE_DOCUMENT }
            as: EXTRACTED_DATA
      - name: transform_data
        from: data_extracted
        to: end
        call:
          - tool: debug_tool
            arguments:
              log: ${ EXTRACTED_DATA }
          - tool: data_transformation_tool
            arguments:
              data: ${ EXTRACTED_DATA }
            as: TRANSFORMED
  - name: pick
    type: stateMachine
    transitions:
      - name: classify
        from: start
        to: [small, large]
        onError: rejected
        call:
          - tool: classify
            arguments: {pick: "${ context.variables.PICK }"}
            as: CLASS
      - {name: small_done, from: small, to: end}
      - {name: large_done, from: large, to: end}
      - {name: rejected_done, from: rejected, to: end}
  - name: approval
    type: stateMachine
    transitions:
      - name: prepare
        from: start
        to: waiting_for_approval
      - name: process_user_approval
        from: waiting_for_approval
        to: approved
        when: manual
        payload_schema:
          type: object
          required: [approved]
          properties: {approved: {type: boolean}, note: {type: string}}
          additionalProperties: false
        deadline: 48h
        on_deadline: expired
        call:
          - tool: approval_processor
            arguments: {approval_data: "${ transition.payload }"}
            as: DECISION
      - {name: finish, from: approved, to: end}
      - {name: expire, from: expired, to: end}
  - name: fanout
    type: stateMachine
    transitions:
      - name: convert
        from: start
        to: end
        call:
          - foreach: ${ context.variables.FILES }
            item: FILE
            limit: 4
            tool: slow
            arguments: {file: "${ FILE }"}
            as: CONVERTED
  - name: saga
    type: stateMachine
    transitions:
      - name: book
        from: start
        to: booked
        call:
          - tool: ledger.reserve
            arguments: {what: flight}
            as: FLIGHT
            compensate: {tool: ledger.release, arguments: {what: flight, id: "${ FLIGHT.id }"}}
          - tool: ledger.reserve
            arguments: {what: hotel}
            as: HOTEL
            compensate: {tool: ledger.release, arguments: {what: hotel, id: "${ HOTEL.id }"}}
      - name: pay
        from: booked
        to: end
        call:
          - tool: ledger.charge
  - name: escalation
    type: stateMachine
    transitions:
      - {name: open, from: start, to: pending_review}
      - name: approve
        from: pending_review
        to: end
        when: manual
        payload_schema: {type: object}
        deadline: 1h
        on_deadline: escalated
      - name: decide
        from: escalated
        to: end
        when: manual
        payload_schema: {type: object}
  - name: loop
    type: stateMachine
    transitions:
      - name: first
        from: start
        to: looping
        call: [{tool: count, as: N}]
      - name: again
        from: looping
        to: looping
        when: ${ N.n < 210 }
        call: [{tool: count, as: N}]
      - name: done
        from: looping
        to: end
        when: ${ N.n >= 210 }
  - name: resumable
    type: stateMachine
    transitions:
      - name: work
        from: start
        to: end
        retry: {max_attempts: 1}
        call:
          - tool: count
            as: FIRST
          - tool: gate
"""

CALLS: list[tuple[str, dict[str, Any]]] = []
IN_FLIGHT = {"now": 0, "max": 0}
GATE = {"open": True}  # `gate` fails while closed
FAIL = {"charge": True}  # `ledger.charge` fails while set


def reset() -> None:
    CALLS.clear()
    IN_FLIGHT.update(now=0, max=0)
    GATE["open"] = True
    FAIL["charge"] = True


async def _record(ctx: SkillContext, tool: str, args: dict[str, Any]) -> None:
    CALLS.append((tool, args))
    if ctx.idempotency_key:
        await ctx.store.kv.set(tenant=ctx.tenant, app=ctx.app, key=f"call:{ctx.idempotency_key}",
                               value={"tool": tool, "args": args})


def _tool(name: str, handler, properties: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(name=name, risk="MEDIUM", description=f"test tool {name}",
                    parameters={"type": "object", "properties": properties or {}}, handler=handler)


def _simple(name: str, answer) -> Skill:
    async def handler(ctx: SkillContext, args: dict[str, Any]) -> Any:
        await _record(ctx, name, args)
        return answer(args)

    return Skill(name=name, description=f"test skill {name}", tools={name: _tool(name, handler)})


async def _slow(ctx: SkillContext, args: dict[str, Any]) -> Any:
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    try:
        await asyncio.sleep(0.05)
        await _record(ctx, "slow", args)
        return {"file": args.get("file"), "pdf": f"{args.get('file')}.pdf"}
    finally:
        IN_FLIGHT["now"] -= 1


async def _gate(ctx: SkillContext, args: dict[str, Any]) -> Any:
    await _record(ctx, "gate", args)
    if not GATE["open"]:
        raise RuntimeError("the gate is closed")
    return {"passed": True}


async def _count(ctx: SkillContext, args: dict[str, Any]) -> Any:
    await _record(ctx, "count", args)
    return {"n": sum(1 for tool, _ in CALLS if tool == "count")}


async def _reserve(ctx: SkillContext, args: dict[str, Any]) -> Any:
    await _record(ctx, "reserve", args)
    return {"id": f"{args['what']}-1"}


async def _release(ctx: SkillContext, args: dict[str, Any]) -> Any:
    await _record(ctx, "release", args)
    return {"released": args.get("id")}


async def _charge(ctx: SkillContext, args: dict[str, Any]) -> Any:
    await _record(ctx, "charge", args)
    if FAIL["charge"]:
        raise RuntimeError("card declined")
    return {"charged": True}


def skills() -> list[Skill]:
    return [
        _simple("data_extraction_tool", lambda a: {"text": f"text of {a.get('source')}", "pages": 3}),
        _simple("debug_tool", lambda a: {"logged": a.get("log")}),
        _simple("data_transformation_tool", lambda a: {"summary": str(a.get("data"))[:80]}),
        _simple("approval_processor", lambda a: {"approved": bool((a.get("approval_data") or {}).get("approved"))}),
        _simple("classify", lambda a: {"nextPlace": a["pick"]} if a.get("pick") else {"class": "default"}),
        Skill(name="slow", description="sleeps 50 ms", tools={"slow": _tool("slow", _slow)}),
        Skill(name="gate", description="fails while closed", tools={"gate": _tool("gate", _gate)}),
        Skill(name="count", description="counts its calls", tools={"count": _tool("count", _count)}),
        Skill(name="ledger", description="a saga's steps",
              tools={"reserve": _tool("reserve", _reserve), "release": _tool("release", _release),
                     "charge": _tool("charge", _charge)}),
    ]


SKILLS = skills()


def registry() -> SkillRegistry:
    found = default_registry(app_skills=False)
    for skill in skills():
        found.register(skill, source="tests.machine_skills")
    return found

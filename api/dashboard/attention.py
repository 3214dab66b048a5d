"""Needs attention: everything that waits for a person, across the tenants, each with its action.

    GET  /                          (signed in) the page; its list refreshes itself every few seconds
    GET  /attention                 the same page; with HX-Request, the list alone
    POST /queue/{id}/resolve        decide an operator-queue item: `decision` approve_once | raise |
                                    approve | reject (`raise_monthly_usd` with raise); audited as `dashboard`

What it lists: open operator-queue items (monthly budget holds, shadow reviews due, ...), heartbeats
and tasks their daily budget stopped today, state-machine
runs waiting for a manual transition and failed ones, failing and disabled heartbeats and tasks. A
tenant whose Temporal cannot be asked is said so on the page; the store's items still show.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.context import ApiContext, Context
from api.dashboard.layout import (
    ACTOR,
    TEMPORAL_WAIT_SECONDS,
    Session,
    action_button,
    cells,
    csrf_input,
    entity_link,
    esc,
    field,
    fragment,
    live,
    page,
    posted_form,
    refused_page,
    run_link,
    status_cell,
    table,
    temporal_link,
    wants_fragment,
    when,
)
from client.budgets import QueueItem, audit_log, queue_items, resolve_item
from client.machines import runs_needing_a_person
from client.operations import health
from contract.budget import QUEUE_BUDGET_MONTHLY
from contract.errors import HeartbeatsError, InvalidInput
from contract.names import SIGNAL_ENABLE, SIGNAL_PAUSE
from contract.shadow import QUEUE_SHADOW_REVIEW

router = APIRouter(include_in_schema=False)

RUNS_SHOWN = 200
BUDGET_STOPS_READ = 200  # the newest daily-budget refusals looked at per tenant (one per routine and day)


@router.get("/attention")
async def attention(request: Request, context: Context, session: Session) -> Response:
    section = await attention_section(context, session)
    return fragment(section) if wants_fragment(request) else attention_page(section, session)


def attention_page(section: str, session: str) -> Response:
    body = f"""<h1>Needs attention</h1>
{section}
<p class="muted">The JSON API: <a href="/docs">interactive documentation</a> · <a href="/openapi.json">OpenAPI
description</a> (calls take <code>Authorization: Bearer &lt;token&gt;</code>). The dashboard is signed in.</p>"""
    return page("Needs attention", body, session=session)


async def attention_section(context: ApiContext, session: str) -> str:
    tenants = await context.backends.store.tenants.list()
    zones = {tenant.id: tenant.timezone for tenant in tenants}
    rows: list[str] = []
    for item in await queue_items(context.backends.store, status="open"):
        rows.append(_queue_row(item, session, zones.get(item.tenant, "UTC")))
    for tenant in tenants:
        rows.extend(await _budget_stops(context, tenant.id, tenant.timezone))
    problem = ""
    try:
        client = await asyncio.wait_for(context.backends.temporal(), TEMPORAL_WAIT_SECONDS) if tenants else None
        if client is not None:
            found = await health(client)
            for view in found.disabled + found.failing:
                signal = SIGNAL_ENABLE if view.status == "disabled" else SIGNAL_PAUSE
                enable = action_button(f"/entities/{quote(view.id, safe=':')}/{signal}", signal, session,
                                       described=view.id, fields={"next": "/"})
                what = "disabled after failing" if view.status == "disabled" else "failing"
                rows.append(cells(esc(view.tenant), entity_link(view.id), status_cell(view.status),
                                  f"{what}: {view.failure_count} failures in a row",
                                  enable + temporal_link(context, client.namespace, view.id)))
            for run in await runs_needing_a_person(client, limit=RUNS_SHOWN):
                what = "waits for a manual transition" if run.status == "waiting" else "failed: retry or cancel"
                rows.append(cells(esc(run.id.split(":")[1]), run_link(run.id), status_cell(run.status),
                                  f"{what} (at {esc(run.place)})", f'<a href="/runs/{quote(run.id, safe=":")}">open</a> '
                                  + temporal_link(context, client.namespace, run.id)))
    except (HeartbeatsError, TimeoutError) as exc:
        problem = f'<p class="problem" role="alert">Temporal could not be asked: {esc(str(exc) or "no answer")}</p>'
    listed = table(["tenant", "what", "status", "why", "action"], rows, caption="things that need a person",
                   empty="Nothing needs attention.")
    return live("attention", "/attention", problem + listed, label="needs attention")


async def _budget_stops(context: ApiContext, tenant: str, zone: str) -> list[str]:
    """Heartbeats and tasks whose daily budget stopped them today (tenant-local): they run again tomorrow."""
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date().isoformat()
    stopped = await audit_log(context.backends.store, tenant=tenant, limit=BUDGET_STOPS_READ, action="budget_daily")
    return [cells(esc(tenant), entity_link(entry.target), status_cell("stopped"),
                  f"daily budget reached: {esc(str(entry.detail.get('spent_usd')))} of"
                  f" {esc(str(entry.detail.get('ceiling_usd')))} USD today; runs again tomorrow",
                  f'<a href="/tenants/{quote(tenant)}/spend">spend</a>')
            for entry in stopped if isinstance(entry.detail, dict) and entry.detail.get("day") == today]


def _queue_row(item: QueueItem, session: str, zone: str) -> str:
    """An operator-queue item with its one-click decisions."""
    url = f"/queue/{item.id}/resolve"
    where = f"{esc(item.app)}/{esc(item.agent)}"
    if item.kind == QUEUE_BUDGET_MONTHLY:
        detail = item.detail if isinstance(item.detail, dict) else {}
        what = (f"monthly budget hold of {where}: spent {esc(str(detail.get('spent_usd', '?')))} of"
                f" {esc(str(detail.get('ceiling_usd', '?')))} USD in {esc(str(detail.get('month', '')))}")
        raise_id = f"raise-{item.id}"
        actions = (action_button(url, "approve once", session, described=f"queue item {item.id}",
                                 fields={"decision": "approve_once"})
                   + f'<form method="post" action="{url}" class="inline">{csrf_input(session)}'
                     f'<input type="hidden" name="decision" value="raise"><label for="{raise_id}">new monthly USD</label>'
                     f'<input type="number" min="0.01" step="0.01" id="{raise_id}" name="raise_monthly_usd" required'
                     f' size="8"><button type="submit" aria-label="raise the monthly budget of queue item {item.id}">'
                     "raise</button></form>"
                   + action_button(url, "reject", session, described=f"queue item {item.id}", fields={"decision": "reject"}))
    elif item.kind == QUEUE_SHADOW_REVIEW:
        target = item.subject
        what = f"shadow runs of {where} to review: {entity_link(target)}"
        actions = (f'<a href="/shadow/{quote(target, safe=":")}">review</a> '
                   + action_button(url, "done", session, described=f"queue item {item.id}", fields={"decision": "approve"}))
    else:
        what = f"{esc(item.kind)} of {where}: {esc(item.subject)}"
        actions = (action_button(url, "approve", session, described=f"queue item {item.id}", fields={"decision": "approve"})
                   + action_button(url, "reject", session, described=f"queue item {item.id}", fields={"decision": "reject"}))
    return cells(esc(item.tenant), f"queue item {item.id} · {what}", status_cell("open"),
                 f"since {when(item.created_at, zone)}", actions)


@router.post("/queue/{item_id}/resolve")
async def resolve(item_id: int, request: Request, context: Context, session: Session) -> Response:
    form = await posted_form(request, session)
    decision = field(form, "decision")
    try:
        if decision not in ("approve_once", "raise", "approve", "reject"):
            raise InvalidInput(f"decision must be approve_once, raise, approve or reject (got {decision!r})")
        await resolve_item(context.backends.store, item_id=item_id, approve=decision != "reject", actor=ACTOR,
                           approve_once=decision == "approve_once",
                           raise_monthly_usd=field(form, "raise_monthly_usd") if decision == "raise" else None)
    except HeartbeatsError as exc:
        return refused_page("Refused", exc, session=session)
    return RedirectResponse("/", status_code=303)

"""One heartbeat, task or runtime task: its status and actions, and its receipts as a timeline.

    GET  /entities/{id}             status, next and last run, failures, run-now/pause/resume/enable,
                                    the link to its history in Temporal, its shadow report when it has
                                    one, and its latest receipts, newest first (outcome, reason, tokens, cost)
    POST /entities/{id}/{signal}    send that operator signal (audited as `dashboard`), then back to
                                    the page the form names in `next` (a local path) or this one
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.context import Context
from api.dashboard.layout import (
    ACTOR,
    Session,
    action_button,
    esc,
    field,
    page,
    posted_form,
    refused_page,
    status_cell,
    temporal_link,
    tenant_zone,
    when,
)
from client.operations import OPERATOR_SIGNALS, check_entity_id, heartbeat_runs, heartbeat_status, signal_heartbeat
from contract.budget import usd
from contract.errors import Conflict, HeartbeatsError, NotFound
from contract.names import JOB_ID_PREFIX
from store.models import Receipt

router = APIRouter(include_in_schema=False)

RECEIPTS_SHOWN = range(1, 501)


@router.get("/entities/{workflow_id}")
async def entity_page(workflow_id: str, context: Context, session: Session, limit: int = Query(100)) -> Response:
    try:
        kind, tenant, app, agent, slug = check_entity_id(workflow_id)
        if limit not in RECEIPTS_SHOWN:
            limit = 100
        receipts = await heartbeat_runs(context.backends.store, workflow_id, limit=limit)
    except HeartbeatsError as exc:
        return refused_page("Not found", exc, session=session)
    zone = await tenant_zone(context, tenant)
    client = await context.backends.temporal()
    try:
        view, answered = await heartbeat_status(client, workflow_id)
        state = (f"<p>{status_cell(view.status, 'status')} · next run {when(view.next_run, zone)} · last run"
                 f" {when(view.last_run, zone)} · {view.failure_count} failures in a row"
                 + ("" if answered else " · <span class=\"muted\">(no worker answered: from search attributes)</span>")
                 + "</p><p>" + "".join(action_button(f"/entities/{quote(workflow_id, safe=':')}/{signal}",
                                                     signal.replace("_", "-"), session, described=workflow_id)
                                       for signal in OPERATOR_SIGNALS) + "</p>")
    except (Conflict, NotFound):
        state = f"<p>{status_cell('ended', 'status')} — it is not running (uninstalled, cancelled or finished).</p>"
    shadow = ("" if kind == JOB_ID_PREFIX else
              f' · <a href="/shadow/{quote(workflow_id, safe=":")}">shadow report</a>')
    body = f"""<h1>{esc(app)}/{esc(agent)}/{esc(slug)}</h1>
<p class="muted">{esc(workflow_id)} · tenant <a href="/tenants/{quote(tenant)}">{esc(tenant)}</a> ({esc(zone)}; UTC on hover)
· {temporal_link(context, client.namespace, workflow_id)}{shadow}</p>
{state}
<h2>Receipts</h2><p class="muted">The latest {limit}, newest first.</p>
{_timeline(receipts, zone)}"""
    return page(f"{app}/{agent}/{slug}", body, session=session)


def _timeline(receipts: list[Receipt], zone: str) -> str:
    if not receipts:
        return '<p class="muted">No receipts yet.</p>'
    items = []
    for receipt in receipts:
        cost = "—" if receipt.nano_usd is None else f"{usd(receipt.nano_usd):.6f} USD"
        reason = f" · {esc(receipt.reason)}" if receipt.reason else ""
        model = f" · {esc(receipt.provider or '')}/{esc(receipt.model)}" if receipt.model else ""
        error = f'<br><span class="problem">{esc(receipt.error[:500])}</span>' if receipt.error else ""
        reply = f'<br><span class="muted">{esc(receipt.reply[:300])}</span>' if receipt.reply else ""
        items.append(
            f'<li>{when(receipt.at, zone)} · {esc(receipt.trigger)} · '
            f'<span class="status outcome-{esc(receipt.outcome)}">{esc(receipt.outcome)}</span>{reason}'
            f" · tokens {receipt.tokens_in} in / {receipt.tokens_out} out · {cost}{model}"
            f" · {receipt.duration_ms} ms{error}{reply}</li>")
    return f'<ol class="timeline" reversed>{"".join(items)}</ol>'


@router.post("/entities/{workflow_id}/{signal}")
async def signal_entity(workflow_id: str, signal: str, request: Request, context: Context, session: Session) -> Response:
    form = await posted_form(request, session)
    try:
        await signal_heartbeat(await context.backends.temporal(), workflow_id, signal,
                               audit=context.backends.store.audit, actor=ACTOR)
    except HeartbeatsError as exc:
        return refused_page("Refused", exc, session=session)
    back = field(form, "next")
    if not back.startswith("/") or back.startswith("//"):  # a local page only: never an open redirect
        back = f"/entities/{quote(workflow_id, safe=':')}"
    return RedirectResponse(back, status_code=303)

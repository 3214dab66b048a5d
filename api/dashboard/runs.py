"""A state-machine run: where it is on its rendered graph, what it did, and a form per manual transition.

    GET  /runs/{id}                        place, status, the graph (Mermaid, the current place marked),
                                           the steps, the variables, a link to its history in Temporal
    POST /runs/{id}/transitions/{name}     fire it; a refused payload shows the page again with the
                                           reason, and changes nothing
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import ApiContext, Context
from api.dashboard.layout import (
    Session,
    cells,
    csrf_input,
    esc,
    json_block,
    page,
    posted_form,
    refused_page,
    status_cell,
    table,
    temporal_link,
    tenant_zone,
    when,
)
from api.errors import status_and_code
from client.machines import graph_installed, show_run, transition_run
from contract.errors import HeartbeatsError
from contract.machine import MachineView, ManualOption

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}")
async def run_page(run_id: str, context: Context, session: Session) -> Response:
    return await _run_page(context, run_id, session)


async def _run_page(context: ApiContext, run_id: str, session: str, *, problem: str | None = None,
                    status: int = 200) -> HTMLResponse:
    try:
        client = await context.backends.temporal()
        view = await show_run(client, run_id)
    except HeartbeatsError as exc:
        return refused_page("Run", exc, session=session)
    zone = await tenant_zone(context, view.tenant)
    try:
        graph = await graph_installed(context.backends.store, tenant=view.tenant, app=view.app,
                                      workflow=view.workflow, current=view.place)
    except HeartbeatsError:
        graph = ""
    forms = "".join(_transition_form(view, option, session, zone) for option in view.waiting_for)
    shown_problem = f'<p class="problem" role="alert">{esc(problem)}</p>' if problem else ""
    steps = [cells(esc(step.transition), esc(step.source), esc(step.target or "-"), esc(step.outcome), when(step.at, zone))
             for step in view.steps]
    drawn = (f'<figure><figcaption>The workflow; the run is at <strong>{esc(view.place)}</strong></figcaption>'
             f'<pre class="mermaid" aria-hidden="true">{esc(graph)}</pre>'
             f"<details><summary>Graph source (Mermaid)</summary><pre>{esc(graph)}</pre></details></figure>"
             if graph else '<p class="muted">The workflow is no longer installed: no graph.</p>')
    body = f"""<h1>{esc(view.workflow)} · {esc(view.key)}</h1>
<p>{status_cell(view.status, "status")} at <strong id="place">{esc(view.place)}</strong>
· tenant <a href="/tenants/{quote(view.tenant)}">{esc(view.tenant)}</a>, app {esc(view.app)}
· definition <code>{esc(view.definition_hash[:19])}…</code> · {temporal_link(context, client.namespace, view.id)}</p>
{shown_problem}{forms}
<h2>Graph</h2>{drawn}
<h2>Steps</h2>{table(["transition", "from", "to", "outcome", "at"], steps, empty="No steps yet.")}
<h2>Variables</h2>{json_block(view.variables)}"""
    return page(f"{view.workflow} {view.key}", body, session=session, status=status)


def _transition_form(view: MachineView, option: ManualOption, session: str, zone: str) -> str:
    """A form for one manual transition: a field per property of its payload_schema (a JSON box for
    anything else), the constraints as hints; the server checks the payload against the schema."""
    action = f"/runs/{quote(view.id, safe=':')}/transitions/{quote(option.transition)}"
    schema = option.payload_schema or {}
    properties = schema.get("properties") if schema.get("type") == "object" else None
    fields = []
    if isinstance(properties, dict) and properties:
        required = set(schema.get("required", []))
        for name, spec in properties.items():
            field_id = f"{option.transition}-{name}"
            kind = spec.get("type") if isinstance(spec, dict) else None
            hint = ", ".join(f"{key} {value}" for key, value in (spec or {}).items() if key not in ("type", "description"))
            label = esc(name) + (" (required)" if name in required else "") + (f" — {esc(hint)}" if hint else "")
            if kind == "boolean":
                control = (f'<input type="hidden" name="bool:{esc(name)}" value="false">'
                           f'<input type="checkbox" id="{field_id}" name="bool:{esc(name)}" value="true">')
            elif kind in ("number", "integer"):
                control = f'<input type="number" step="any" id="{field_id}" name="number:{esc(name)}">'
            elif kind == "string":
                control = f'<input type="text" id="{field_id}" name="text:{esc(name)}">'
            else:
                control = f'<textarea id="{field_id}" name="json:{esc(name)}" rows="3"></textarea>'
            fields.append(f'<label for="{field_id}">{label}</label>{control}')
    else:
        fields.append(f'<label for="{option.transition}-payload">payload (JSON)</label>'
                      f'<textarea id="{option.transition}-payload" name="payload" rows="4">{{}}</textarea>')
    deadline = (f"<p>Deadline {when(option.deadline_at, zone)} → {esc(option.on_deadline or '')}</p>"
                if option.deadline_at else "")
    return f"""<section><h2>{esc(option.transition)} → {esc(' | '.join(option.targets))}</h2>{deadline}
<form method="post" action="{action}">{csrf_input(session)}
{''.join(fields)}
<button type="submit">Fire {esc(option.transition)}</button></form></section>"""


def _payload(form: dict[str, list[str]]) -> Any:
    """The payload a transition form posted: its fields, typed, or its JSON box."""
    if "payload" in form:
        return json.loads(form["payload"][0] or "null")
    payload: dict[str, Any] = {}
    for key, values in form.items():
        kind, _, name = key.partition(":")
        value = values[-1]  # a checked box follows its hidden "false"
        if kind == "text":
            payload[name] = value
        elif kind == "bool":
            payload[name] = value == "true"
        elif kind == "number" and value != "":
            payload[name] = float(value) if any(c in value for c in ".eE") else int(value)
        elif kind == "json" and value.strip():
            payload[name] = json.loads(value)
    return payload


@router.post("/runs/{run_id}/transitions/{name}")
async def fire(run_id: str, name: str, request: Request, context: Context, session: Session) -> Response:
    form = await posted_form(request, session)
    try:
        payload = _payload(form)
    except ValueError as exc:
        return await _run_page(context, run_id, session, problem=f"the payload is not JSON: {exc}", status=400)
    try:
        await transition_run(await context.backends.temporal(), run_id, name, payload)
    except HeartbeatsError as exc:
        return await _run_page(context, run_id, session, problem=str(exc), status=status_and_code(exc)[0])
    return RedirectResponse(f"/runs/{quote(run_id, safe=':')}", status_code=303)

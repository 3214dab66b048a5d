"""Dashboard pages over the same library functions as the CLI and the API (client.machines, client.budgets).

    GET  /                                 needs attention: runs waiting for a person, failed runs, open queue items
    GET  /tenants/{tenant}                 the tenant's heartbeats and tasks: status, next and last run,
                                           failures, with run-now, pause, resume and enable
    POST /entities/{id}/{signal}           send that operator signal (CSRF-checked, audited as `dashboard`)
    GET  /runs/{id}                        one state-machine run: place, status, its graph, the steps, and
                                           a form per manual transition, generated from its payload_schema
    POST /runs/{id}/transitions/{name}     fire it (CSRF-checked); a refused payload shows the page again,
                                           with the reason, and changes nothing

Every page needs a signed-in session; every action carries the session's CSRF token. Times are shown
in UTC with the ISO form on hover.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import ApiContext, Context
from api.sessions import SESSION_COOKIE
from client.machines import graph_installed, list_runs, show_run, transition_run
from client.operations import OPERATOR_SIGNALS, list_heartbeats, signal_heartbeat
from contract.errors import HeartbeatsError
from contract.machine import MachineView, ManualOption
from contract.vocabulary import iso_utc

router = APIRouter(include_in_schema=False)

CSRF_FIELD = "csrf"
TEMPORAL_WAIT_SECONDS = 5.0


def csrf_token(session: str) -> str:
    """The CSRF token of a session: derived from its (HttpOnly, unreadable to scripts) id."""
    return hashlib.sha256(b"csrf:" + session.encode()).hexdigest()


def _session(context: ApiContext, request: Request) -> str | None:
    session = request.cookies.get(SESSION_COOKIE)
    return session if context.sessions.valid(session) else None


_STYLE = """
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; }
  .problem { color: #a00; font-weight: bold; } .status { font-weight: bold; }
  pre { background: #f6f6f6; padding: .75rem; overflow-x: auto; }
  label { display: block; margin-top: .5rem; } input, textarea { font: inherit; padding: .3rem; }
  button { margin-top: .75rem; padding: .4rem 1rem; font: inherit; }
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{html.escape(title)} · agent-heartbeats</title>
<style>{_STYLE}</style></head>
<body><nav><a href="/">Needs attention</a></nav><main>
{body}
</main></body></html>""", status_code=status, headers={"Cache-Control": "no-store"})


def _time(value: Any) -> str:
    text = (value if isinstance(value, str) else iso_utc(value)) or ""
    return f'<time datetime="{html.escape(text)}" title="{html.escape(text)}">{html.escape(text)}</time>'


def _run_link(run_id: str) -> str:
    return f'<a href="/runs/{quote(run_id, safe=":")}">{html.escape(run_id)}</a>'


async def _form(request: Request) -> dict[str, list[str]]:
    """A posted form's fields, blank ones kept."""
    return parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)


def _csrf_ok(form: dict[str, list[str]], session: str) -> bool:
    """Whether the form carries the session's CSRF token (taken out of the form)."""
    return hmac.compare_digest((form.pop(CSRF_FIELD, None) or [""])[0], csrf_token(session))


def _stale_form() -> HTMLResponse:
    return _page("Refused", '<p class="problem">This form is stale or was not sent from the dashboard.</p>', 403)


@router.get("/attention")
async def attention(request: Request, context: Context) -> Response:
    """The needs-attention page (also what `/` shows once signed in)."""
    if _session(context, request) is None:
        return RedirectResponse("/", status_code=303)
    return await needs_attention(context)


async def needs_attention(context: ApiContext) -> HTMLResponse:
    """Runs waiting for a person, failed runs and open queue items, across the tenants."""
    tenants = await context.backends.store.tenants.list()
    rows, problem = [], ""
    try:
        client = await asyncio.wait_for(context.backends.temporal(), TEMPORAL_WAIT_SECONDS) if tenants else None
        for tenant in tenants:
            rows.append(f'<tr><td>{html.escape(tenant.id)}</td><td><a href="/tenants/{quote(tenant.id)}">heartbeats'
                        f" and tasks</a></td><td></td><td></td><td></td></tr>")
            for status, what in (("waiting", "waits for a manual transition"), ("failed", "failed: retry or cancel")):
                for run in await list_runs(client, tenant=tenant.id, status=status, limit=200):
                    rows.append(f"<tr><td>{html.escape(tenant.id)}</td><td>{_run_link(run.id)}</td>"
                                f'<td class="status">{html.escape(run.status)}</td><td>{html.escape(run.place)}</td>'
                                f"<td>{what}</td></tr>")
    except (HeartbeatsError, TimeoutError) as exc:
        problem = f'<p class="problem" role="alert">Temporal could not be asked: {html.escape(str(exc) or "no answer")}</p>'

    items = await context.backends.store.queue.list(status="open")
    for item in items:
        rows.append(f"<tr><td>{html.escape(item.tenant)}</td><td>queue item {item.id}: {html.escape(item.kind)}"
                    f" ({html.escape(item.app)}/{html.escape(item.agent)})</td><td class=\"status\">open</td>"
                    f"<td></td><td>resolve: <code>heartbeats queue resolve {item.id}</code></td></tr>")
    table = ("<table><thead><tr><th>tenant</th><th>what</th><th>status</th><th>place</th><th>action</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>Nothing needs attention.</p>"
    body = f"""<h1>Needs attention</h1>{problem}{table}
<p>The dashboard is signed in. The JSON API: <a href="/docs">interactive documentation</a> ·
<a href="/openapi.json">OpenAPI description</a> (calls take <code>Authorization: Bearer &lt;token&gt;</code>).</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>"""
    return _page("Needs attention", body)


@router.get("/tenants/{tenant}")
async def tenant_page(tenant: str, request: Request, context: Context) -> Response:
    session = _session(context, request)
    if session is None:
        return RedirectResponse("/", status_code=303)
    try:
        found = await list_heartbeats(await context.backends.temporal(), tenant=tenant)
    except HeartbeatsError as exc:
        return _page(tenant, f'<h1>{html.escape(tenant)}</h1><p class="problem">{html.escape(str(exc))}</p>', 400)
    token = csrf_token(session)
    rows = []
    for view in sorted(found.views, key=lambda v: v.id):
        actions = "".join(
            f'<form method="post" action="/entities/{quote(view.id, safe=":")}/{signal}" style="display:inline">'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{token}">'
            f'<button type="submit" aria-label="{signal} {html.escape(view.id)}">{signal.replace("_", "-")}</button></form> '
            for signal in OPERATOR_SIGNALS)
        rows.append(f"<tr><td>{html.escape(view.app)}/{html.escape(view.agent)}/{html.escape(view.slug)}</td>"
                    f'<td class="status" id="status-{html.escape(view.slug)}">{html.escape(view.status)}</td>'
                    f"<td>{_time(view.next_run)}</td><td>{_time(view.last_run)}</td><td>{view.failure_count}</td>"
                    f"<td>{actions}</td></tr>")
    table = ("<table><thead><tr><th>heartbeat or task</th><th>status</th><th>next run (UTC)</th>"
             "<th>last run (UTC)</th><th>failures in a row</th><th>actions</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>No heartbeats or tasks are running.</p>"
    return _page(tenant, f"<h1>{html.escape(tenant)}: heartbeats and tasks</h1>{table}")


@router.post("/entities/{workflow_id}/{signal}")
async def signal_entity(workflow_id: str, signal: str, request: Request, context: Context) -> Response:
    session = _session(context, request)
    if session is None:
        return RedirectResponse("/", status_code=303)
    form = await _form(request)
    if not _csrf_ok(form, session):
        return _stale_form()
    try:
        await signal_heartbeat(await context.backends.temporal(), workflow_id, signal,
                               audit=context.backends.store.audit, actor="dashboard")
    except HeartbeatsError as exc:
        return _page("Refused", f'<p class="problem" role="alert">{html.escape(str(exc))}</p>', 400)
    tenant = workflow_id.split(":")[1]
    return RedirectResponse(f"/tenants/{quote(tenant)}", status_code=303)


@router.get("/runs/{run_id}")
async def run_page(run_id: str, request: Request, context: Context) -> Response:
    session = _session(context, request)
    if session is None:
        return RedirectResponse("/", status_code=303)
    return await _run_page(context, run_id, session)


async def _run_page(context: ApiContext, run_id: str, session: str, *, problem: str | None = None,
                    status: int = 200) -> HTMLResponse:
    try:
        view = await show_run(await context.backends.temporal(), run_id)
    except HeartbeatsError as exc:
        return _page("Run", f'<h1>Run</h1><p class="problem">{html.escape(str(exc))}</p>', 404)
    try:
        graph = await graph_installed(context.backends.store, tenant=view.tenant, app=view.app,
                                      workflow=view.workflow, current=view.place)
    except HeartbeatsError:
        graph = ""
    forms = "".join(_transition_form(view, option, session) for option in view.waiting_for)
    shown_problem = f'<p class="problem" role="alert">{html.escape(problem)}</p>' if problem else ""
    steps = "".join(
        f"<tr><td>{html.escape(step.transition)}</td><td>{html.escape(step.source)}</td>"
        f"<td>{html.escape(step.target or '-')}</td><td>{html.escape(step.outcome)}</td><td>{_time(step.at)}</td></tr>"
        for step in view.steps)
    body = f"""<h1>{html.escape(view.workflow)} · {html.escape(view.key)}</h1>
<p><span class="status" id="status">{html.escape(view.status)}</span> at <strong id="place">{html.escape(view.place)}</strong>
· definition <code>{html.escape(view.definition_hash[:19])}…</code></p>
{shown_problem}{forms}
<h2>Graph</h2><pre class="mermaid" aria-label="the workflow as a Mermaid state diagram">{html.escape(graph)}</pre>
<h2>Steps</h2><table><thead><tr><th>transition</th><th>from</th><th>to</th><th>outcome</th><th>at (UTC)</th></tr></thead>
<tbody>{steps}</tbody></table>
<h2>Variables</h2><pre>{html.escape(json.dumps(view.variables, indent=2, ensure_ascii=False)[:20_000])}</pre>"""
    return _page(f"{view.workflow} {view.key}", body, status)


def _transition_form(view: MachineView, option: ManualOption, session: str) -> str:
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
            label = html.escape(name) + (" (required)" if name in required else "") + (f" — {html.escape(hint)}" if hint else "")
            if kind == "boolean":
                control = (f'<input type="hidden" name="bool:{html.escape(name)}" value="false">'
                           f'<input type="checkbox" id="{field_id}" name="bool:{html.escape(name)}" value="true">')
            elif kind in ("number", "integer"):
                control = f'<input type="number" step="any" id="{field_id}" name="number:{html.escape(name)}">'
            elif kind == "string":
                control = f'<input type="text" id="{field_id}" name="text:{html.escape(name)}">'
            else:
                control = f'<textarea id="{field_id}" name="json:{html.escape(name)}" rows="3"></textarea>'
            fields.append(f'<label for="{field_id}">{label}</label>{control}')
    else:
        fields.append(f'<label for="{option.transition}-payload">payload (JSON)</label>'
                      f'<textarea id="{option.transition}-payload" name="payload" rows="4">{{}}</textarea>')
    deadline = (f"<p>Deadline {_time(option.deadline_at)} → {html.escape(option.on_deadline or '')}</p>"
                if option.deadline_at else "")
    return f"""<section><h2>{html.escape(option.transition)} → {html.escape(' | '.join(option.targets))}</h2>{deadline}
<form method="post" action="{action}"><input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(session)}">
{''.join(fields)}
<button type="submit">Fire {html.escape(option.transition)}</button></form></section>"""


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
async def fire(run_id: str, name: str, request: Request, context: Context) -> Response:
    session = _session(context, request)
    if session is None:
        return RedirectResponse("/", status_code=303)
    form = await _form(request)
    if not _csrf_ok(form, session):
        return _stale_form()
    try:
        payload = _payload(form)
    except ValueError as exc:
        return await _run_page(context, run_id, session, problem=f"the payload is not JSON: {exc}", status=400)
    try:
        await transition_run(await context.backends.temporal(), run_id, name, payload)
    except HeartbeatsError as exc:
        return await _run_page(context, run_id, session, problem=str(exc), status=400)
    return RedirectResponse(f"/runs/{quote(run_id, safe=':')}", status_code=303)

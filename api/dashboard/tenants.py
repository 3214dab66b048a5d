"""Tenants → apps → heartbeats, tasks, runtime tasks and state-machine runs.

    GET /tenants                          every tenant: its zone and installed apps
    GET /tenants/{t}                      its apps, then its heartbeats and tasks (paged, searchable)
    GET /tenants/{t}/apps/{a}             one app: its heartbeats and tasks (paged, searchable), runtime
                                          tasks and state-machine runs

The heartbeat list asks Temporal's visibility for one page (PAGE_SIZE) and only that page's
workflows for their status, so a page costs the same with 10,000 installed; `q` keeps those whose
agent or slug starts with it. The list refreshes itself (htmx) on the page the operator is on.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.context import ApiContext, Context
from api.dashboard.layout import (
    Session,
    action_button,
    cells,
    entity_link,
    esc,
    fragment,
    live,
    page,
    refused_page,
    run_link,
    status_cell,
    table,
    temporal_link,
    wants_fragment,
    when,
)
from client.checks import require_id, require_tenant
from client.jobs import list_tasks
from client.machines import list_runs
from client.operations import OPERATOR_SIGNALS, page_heartbeats
from contract.errors import HeartbeatsError, NotFound

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
RUNS_SHOWN = 50


@router.get("/tenants")
async def tenants_page(context: Context, session: Session) -> Response:
    store = context.backends.store
    rows = []
    for tenant in await store.tenants.list():
        apps = await store.apps.summaries(tenant=tenant.id)
        rows.append(cells(f'<a href="/tenants/{quote(tenant.id)}">{esc(tenant.id)}</a>', esc(tenant.timezone),
                          ", ".join(f'<a href="/tenants/{quote(tenant.id)}/apps/{quote(a.id)}">{esc(a.id)}</a>'
                                    for a in apps) or '<span class="muted">none</span>',
                          f'<a href="/tenants/{quote(tenant.id)}/spend">spend</a>'))
    body = "<h1>Tenants</h1>" + table(["tenant", "time zone", "apps", ""], rows, empty="No tenants yet.")
    return page("Tenants", body, session=session)


@router.get("/tenants/{tenant}")
async def tenant_page(tenant: str, request: Request, context: Context, session: Session,
                      q: str = Query(""), page_: str = Query("", alias="page")) -> Response:
    return await _listing(context, request, session, tenant, None, q, page_)


@router.get("/tenants/{tenant}/apps/{app}")
async def app_page(tenant: str, app: str, request: Request, context: Context, session: Session,
                   q: str = Query(""), page_: str = Query("", alias="page")) -> Response:
    return await _listing(context, request, session, tenant, app, q, page_)


async def _listing(context: ApiContext, request: Request, session: str, tenant: str, app: str | None,
                   q: str, page_token: str) -> Response:
    store = context.backends.store
    try:
        zone = (await require_tenant(store, require_id(tenant, "tenant"))).timezone
        if app is not None and require_id(app, "app") and await store.apps.get(tenant=tenant, app=app) is None:
            raise NotFound(f"tenant {tenant!r} has no installed app {app!r}")
        section = await _entity_section(context, session, tenant, app, q.strip(), page_token, zone)
    except HeartbeatsError as exc:
        return refused_page(tenant, exc, session=session)
    if wants_fragment(request):
        return fragment(section)
    base = f"/tenants/{quote(tenant)}" + (f"/apps/{quote(app)}" if app else "")
    search = f"""<form method="get" action="{base}" role="search"><label for="q">Agent or slug starts with</label>
<input type="search" id="q" name="q" value="{esc(q)}" pattern="[a-z0-9_-]*" maxlength="64"> <button type="submit">Search</button></form>"""
    if app is None:
        apps = await store.apps.summaries(tenant=tenant)
        head = (f"<h1>Tenant {esc(tenant)}</h1><p>Time zone {esc(zone)} (times below are in it; UTC on hover)"
                f' · <a href="{base}/spend">spend against budgets</a></p><h2>Apps</h2>'
                + table(["app", "name", "version", "installed"],
                        [cells(f'<a href="{base}/apps/{quote(a.id)}">{esc(a.id)}</a>', esc(a.name), esc(a.version),
                               when(a.installed_at, zone)) for a in apps], empty="No apps installed."))
        extra = ""
    else:
        head = (f'<h1>App {esc(app)} <span class="muted">of tenant <a href="/tenants/{quote(tenant)}">{esc(tenant)}</a>'
                f"</span></h1><p>Time zone {esc(zone)} (UTC on hover)</p>")
        extra = await _app_extras(context, tenant, app, zone)
    body = f"{head}<h2>Heartbeats and tasks</h2>{search}{section}{extra}"
    return page(f"{tenant}/{app}" if app else tenant, body, session=session)


async def _entity_section(context: ApiContext, session: str, tenant: str, app: str | None, q: str,
                          page_token: str, zone: str) -> str:
    """One page of the heartbeats and tasks, with their actions and paging links."""
    base = f"/tenants/{quote(tenant)}" + (f"/apps/{quote(app)}" if app else "")
    here = f"{base}?{urlencode({'q': q, 'page': page_token})}"
    client = await context.backends.temporal()
    found = await page_heartbeats(client, tenant=tenant, app=app, search=q or None, page_size=PAGE_SIZE,
                                  page=page_token or None)
    rows = []
    for view in found.views:
        actions = "".join(action_button(f"/entities/{quote(view.id, safe=':')}/{signal}", signal.replace("_", "-"),
                                        session, described=view.id, fields={"next": here})
                          for signal in OPERATOR_SIGNALS)
        rows.append(cells(entity_link(view.id, f"{view.app}/{view.agent}/{view.slug}"),
                          status_cell(view.status, f"status-{view.slug}"), when(view.next_run, zone),
                          when(view.last_run, zone), str(view.failure_count), actions,
                          temporal_link(context, client.namespace, view.id)))
    listed = table(["heartbeat or task", "status", "next run", "last run", "failures in a row", "actions",
                    "Temporal"], rows, caption="heartbeats and tasks",
                   empty=("No more: that was the last page." if page_token  # visibility may offer one empty page more
                          else "No heartbeats or tasks match." if q else "No heartbeats or tasks are running."))
    paging = []
    if page_token:
        paging.append(f'<a href="{base}?{urlencode({"q": q})}">first page</a>')
    if found.next_page:
        paging.append(f'<a href="{base}?{urlencode({"q": q, "page": found.next_page})}" rel="next">next page</a>')
    note = (f'<p class="muted">{found.unanswered} answered from search attributes only (no worker answered in'
            " time: none is running, or it has not started newly installed ones yet): no run times for those.</p>"
            if found.unanswered else "")
    pager = f'<nav class="pager" aria-label="pages">{"".join(paging)}</nav>' if paging else ""
    return live(f"entities-{app or 'all'}", here, listed + note + pager, label="heartbeats and tasks")


async def _app_extras(context: ApiContext, tenant: str, app: str, zone: str) -> str:
    """An app's runtime tasks and state-machine runs."""
    store = context.backends.store
    client = await context.backends.temporal()
    tasks, runs = await asyncio.gather(list_tasks(store, tenant=tenant, app=app),
                                       list_runs(client, tenant=tenant, app=app, limit=RUNS_SHOWN))
    task_rows = [cells(entity_link(view.task.workflow_id, f"{view.task.agent}/{view.task.key}"),
                       status_cell(view.task.status), esc(view.to_json()["timing"]), when(view.next_run, zone),
                       esc(view.task.created_by), temporal_link(context, client.namespace, view.task.workflow_id))
                 for view in tasks]
    run_rows = [cells(run_link(run.id), status_cell(run.status), esc(run.place), when(run.started_at, zone),
                      temporal_link(context, client.namespace, run.id)) for run in runs]
    return ("<h2>Runtime tasks</h2>"
            + table(["task", "status", "timing", "next run", "created by", "Temporal"], task_rows,
                    empty="No runtime tasks.")
            + f"<h2>State-machine runs</h2><p class=\"muted\">The newest {RUNS_SHOWN}.</p>"
            + table(["run", "status", "place", "started", "Temporal"], run_rows, empty="No runs."))

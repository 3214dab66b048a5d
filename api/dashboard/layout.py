"""The dashboard's frame, shared by every page: signing-in checks, CSRF, the page shell, times in
the tenant's zone, links to the Temporal web UI, live sections, paging links.

A page handler takes `session: Session` (not signed in: back to the sign-in form) and builds its
body from the library functions the CLI and the JSON API use; an action handler reads its form
with `posted_form` (a missing or wrong CSRF token: 403, nothing done).

Live sections refresh with htmx: `live("queue", url, inner)` renders a <section> that asks `url`
again every few seconds and swaps itself; a handler answers such a request (it carries
`HX-Request`) with the section alone (`wants_fragment`).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from api.context import ApiContext, api_context
from api.errors import status_and_code
from api.sessions import SESSION_COOKIE
from contract.errors import HeartbeatsError

ACTOR = "dashboard"  # who the audit log says acted
CSRF_FIELD = "csrf"
REFRESH_SECONDS = 10
TEMPORAL_WAIT_SECONDS = 5.0
# Served by api.dashboard.assets from api/static/ (vendored files carry their version in the name).
SCRIPTS = ("vendor/htmx-2.0.11.min.js", "vendor/mermaid-11.17.2.min.js", "dashboard.js")

# Scripts only from this server (no inline script); Mermaid's SVG carries inline styles.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

esc = html.escape


class NotSignedIn(Exception):
    """A dashboard page asked for without a valid session: answered with the sign-in form."""


class StaleForm(Exception):
    """A posted form without the session's CSRF token: answered 403, nothing done."""


def csrf_token(session: str) -> str:
    """The CSRF token of a session: derived from its (HttpOnly, unreadable to scripts) id."""
    return hashlib.sha256(b"csrf:" + session.encode()).hexdigest()


def require_session(request: Request) -> str:
    """Dependency: the signed-in session's id, or NotSignedIn."""
    context: ApiContext = api_context(request)
    session = request.cookies.get(SESSION_COOKIE)
    if not context.sessions.valid(session):
        raise NotSignedIn
    assert session is not None
    return session


Session = Annotated[str, Depends(require_session)]


async def posted_form(request: Request, session: str) -> dict[str, list[str]]:
    """A posted form's fields (blank ones kept), once its CSRF token matched the session's."""
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
    if not hmac.compare_digest((form.pop(CSRF_FIELD, None) or [""])[0], csrf_token(session)):
        raise StaleForm
    return form


def field(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[-1].strip()


def csrf_input(session: str) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(session)}">'


def action_button(url: str, label: str, session: str, *, described: str, fields: dict[str, str] | None = None) -> str:
    """A one-click action: a small POST form (keyboard-usable: it is a real button)."""
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (fields or {}).items())
    # A stable id: htmx gives focus back to it after a live section refreshed under the keyboard user.
    element_id = "act-" + hashlib.sha256(f"{url}|{label}".encode()).hexdigest()[:16]
    return (f'<form method="post" action="{esc(url)}" class="inline">{csrf_input(session)}{hidden}'
            f'<button type="submit" id="{element_id}" aria-label="{esc(label)} {esc(described)}">{esc(label)}</button></form>')


_STYLE = """
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 1.5rem auto; padding: 0 1rem; color: #1d1d1d; }
  nav { display: flex; gap: 1rem; flex-wrap: wrap; align-items: center; border-bottom: 1px solid #ccc; padding-bottom: .5rem; }
  nav form { margin-left: auto; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  .problem { color: #a00; font-weight: bold; } .status { font-weight: bold; }
  .status-failed, .status-disabled, .outcome-failed { color: #a00; } .status-paused, .status-waiting { color: #8a5a00; }
  pre { background: #f6f6f6; padding: .75rem; overflow-x: auto; }
  label { display: block; margin-top: .5rem; } input, textarea, select { font: inherit; padding: .3rem; }
  button { padding: .25rem .75rem; font: inherit; cursor: pointer; }
  form.inline { display: inline; } form.inline button { margin: 0 .25rem .25rem 0; }
  a:focus, button:focus, input:focus { outline: 3px solid #1a5fb4; outline-offset: 1px; }
  .muted { color: #555; } .chart { max-width: 100%; height: auto; }
  .pager { margin: .75rem 0; display: flex; gap: 1rem; }
  figure { margin: 1rem 0; } figcaption { font-weight: bold; }
  .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
"""


def page(title: str, body: str, *, session: str | None = None, status: int = 200) -> HTMLResponse:
    """A whole page: the navigation (with sign-out when signed in), then `body`."""
    scripts = "".join(f'<script src="/static/{name}" defer></script>' for name in SCRIPTS)
    sign_out = (f'<form method="post" action="/logout">{csrf_input(session)}<button type="submit">Sign out</button></form>'
                if session else "")
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{esc(title)} · agent-heartbeats</title>
<style>{_STYLE}</style>{scripts}</head>
<body><nav aria-label="dashboard"><a href="/">Needs attention</a><a href="/tenants">Tenants</a>{sign_out}</nav>
<main>
{body}
</main></body></html>""", status_code=status, headers=_HEADERS)


def fragment(body: str, status: int = 200) -> HTMLResponse:
    """A live section alone, for htmx's refresh."""
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


# Pages are never cached: a signed-in page must not come back from a cache after signing out.
_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff"}


def problem_page(title: str, message: str, *, session: str | None, status: int) -> HTMLResponse:
    return page(title, f'<h1>{esc(title)}</h1><p class="problem" role="alert">{esc(message)}</p>',
                session=session, status=status)


def refused_page(title: str, error: HeartbeatsError, *, session: str) -> HTMLResponse:
    """A project error as a page, with the status the JSON API gives it (404, 409, 400, 503, ...)."""
    return problem_page(title, str(error), session=session, status=status_and_code(error)[0])


def wants_fragment(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def live(section_id: str, url: str, inner: str, *, label: str) -> str:
    """A section that refreshes itself from `url` every REFRESH_SECONDS (htmx), announced politely."""
    return (f'<section id="{esc(section_id)}" aria-label="{esc(label)}" aria-live="polite" hx-get="{esc(url)}"'
            f' hx-trigger="every {REFRESH_SECONDS}s" hx-swap="outerHTML">{inner}</section>')


def when(value: datetime | str | None, zone: str = "UTC") -> str:
    """A time in the tenant's zone, its UTC form on hover and in `datetime`."""
    if value is None or value == "":
        return '<span class="muted">—</span>'
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    utc = moment.astimezone(ZoneInfo("UTC"))
    local = moment.astimezone(ZoneInfo(zone))
    utc_text = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'<time datetime="{utc_text}" title="{utc_text} UTC">'
            f'{local.strftime("%Y-%m-%d %H:%M")} {esc(local.tzname() or zone)}</time>')


def temporal_link(context: ApiContext, namespace: str, workflow_id: str) -> str:
    """A link to the workflow's runs in the Temporal web UI (its history is one click further)."""
    query = urlencode({"query": f'WorkflowId="{workflow_id}"'})
    url = f"{context.settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(namespace)}/workflows?{query}"
    return (f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer"'
            f' aria-label="history of {esc(workflow_id)} in the Temporal web UI">history ↗</a>')


def run_link(run_id: str) -> str:
    return f'<a href="/runs/{quote(run_id, safe=":")}">{esc(run_id)}</a>'


def entity_link(workflow_id: str, text: str | None = None) -> str:
    return f'<a href="/entities/{quote(workflow_id, safe=":")}">{esc(text or workflow_id)}</a>'


def table(headers: list[str], rows: list[str], *, empty: str, caption: str | None = None) -> str:
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    shown = f"<caption class=\"visually-hidden\">{esc(caption)}</caption>" if caption else ""
    return f"<table>{shown}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def cells(*values: str) -> str:
    """A table row of already-escaped cells."""
    return "<tr>" + "".join(f"<td>{value}</td>" for value in values) + "</tr>"


def status_cell(status: str, element_id: str | None = None) -> str:
    id_attr = f' id="{esc(element_id)}"' if element_id else ""
    return f'<span class="status status-{esc(status)}"{id_attr}>{esc(status)}</span>'


def json_block(value: Any, limit: int = 20_000) -> str:
    return f"<pre>{esc(json.dumps(value, indent=2, ensure_ascii=False, default=str)[:limit])}</pre>"


async def tenant_zone(context: ApiContext, tenant: str) -> str:
    """The tenant's time zone (UTC for a tenant the store does not know)."""
    found = await context.backends.store.tenants.get(tenant=tenant)
    return found.timezone if found is not None else "UTC"

"""Signing in with the token, and out.

`GET /login?token=T` (the link `heartbeats serve` prints) or the sign-in form's POST opens a session:
an HttpOnly, SameSite=Strict cookie holding a random session id, then a redirect to `/`. Without a
session every page answers with the sign-in form. The session cookie opens the dashboard only; the
JSON API under `/v1/` always wants the bearer token.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import ApiContext, Context
from api.dashboard.layout import esc, page, posted_form
from api.sessions import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

_LOGIN = """<h1>agent-heartbeats</h1>
{problem}<form method="post" action="/login">
  <label for="token">API token</label>
  <input type="password" id="token" name="token" autocomplete="current-password" autofocus required>
  <button type="submit">Sign in</button>
</form>
<p>The token is <code>HEARTBEATS_API_TOKEN</code>, or the one <code>heartbeats serve</code> generated and
keeps in <code>.data/api-token</code>. The link it prints signs you in directly.</p>
"""


def login_page(problem: str | None = None, status: int = 200) -> HTMLResponse:
    shown = f'<p class="problem" role="alert">{esc(problem)}</p>\n' if problem else ""
    return page("Sign in", _LOGIN.format(problem=shown), status=status)


def _open_session(context: ApiContext, request: Request, token: str) -> Response:
    if not context.token.matches(token.strip()):
        return login_page("That token is not valid.", status=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, context.sessions.open(), max_age=int(context.sessions.lifetime),
                        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.get("/login")
async def login_link(request: Request, context: Context, token: str | None = Query(None)) -> Response:
    if token is None:
        return login_page()
    return _open_session(context, request, token)


@router.post("/login")
async def login_form(request: Request, context: Context) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    return _open_session(context, request, (form.get("token") or [""])[0])


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if context.sessions.valid(session):
        assert session is not None
        await posted_form(request, session)  # a page elsewhere cannot sign the operator out
    context.sessions.close(session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

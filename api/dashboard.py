"""The operator dashboard's room at `/`: signing in with the token, and the signed-in page.

`GET /login?token=T` (the link `heartbeats serve` prints) or the login form's POST opens a session:
an HttpOnly, SameSite=Strict cookie holding a random session id, then a redirect to `/`. Without a
session every page shows only the login form. The session cookie opens the dashboard only; the
JSON API under `/v1/` always wants the bearer token.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import ApiContext, Context
from api.pages import needs_attention
from api.sessions import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · agent-heartbeats</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem; color: #222; }}
  h1 {{ font-size: 1.4rem; }}
  input[type=password] {{ width: 100%; padding: .5rem; font: inherit; box-sizing: border-box; }}
  button {{ margin-top: .75rem; padding: .4rem 1rem; font: inherit; }}
  .problem {{ color: #a00; }}
  code {{ background: #f3f3f3; padding: 0 .25rem; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""

_LOGIN = """<h1>agent-heartbeats</h1>
{problem}<form method="post" action="/login">
  <label for="token">API token</label>
  <input type="password" id="token" name="token" autocomplete="current-password" autofocus required>
  <button type="submit">Sign in</button>
</form>
<p>The token is <code>HEARTBEATS_API_TOKEN</code>, or the one <code>heartbeats serve</code> generated and
keeps in <code>.data/api-token</code>. The link it prints signs you in directly.</p>
"""



def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    # Pages are never cached: a signed-in page must not come back from a cache after signing out.
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store"})


def _login_page(problem: str | None = None, status: int = 200) -> HTMLResponse:
    shown = f'<p class="problem">{html.escape(problem)}</p>\n' if problem else ""
    return _page("Sign in", _LOGIN.format(problem=shown), status)


def _signed_in(context: ApiContext, request: Request) -> bool:
    return context.sessions.valid(request.cookies.get(SESSION_COOKIE))


def _open_session(context: ApiContext, request: Request, token: str) -> Response:
    if not context.token.matches(token.strip()):
        return _login_page("That token is not valid.", status=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, context.sessions.open(), max_age=int(context.sessions.lifetime),
                        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.get("/")
async def home(request: Request, context: Context) -> Response:
    if not _signed_in(context, request):
        return _login_page()
    return await needs_attention(context)


@router.get("/login")
async def login_link(request: Request, context: Context, token: str | None = Query(None)) -> Response:
    if token is None:
        return _login_page()
    return _open_session(context, request, token)


@router.post("/login")
async def login_form(request: Request, context: Context) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    return _open_session(context, request, (form.get("token") or [""])[0])


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    context.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

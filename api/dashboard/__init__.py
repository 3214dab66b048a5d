"""The operator dashboard at `/`: server-rendered pages over the library functions the CLI and the
JSON API use (no second implementation of any operation), a little htmx for live lists, Mermaid for
state-machine graphs. A file per page; layout.py is the frame they share."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from api.context import Context
from api.dashboard import assets, attention, entities, login, runs, shadow, spend, tenants
from api.dashboard.layout import NotSignedIn, StaleForm, problem_page, require_session

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, context: Context) -> Response:
    """The needs-attention page once signed in; the sign-in form before."""
    try:
        session = require_session(request)
    except NotSignedIn:
        return login.login_page()
    return attention.attention_page(await attention.attention_section(context, session), session)


ROOMS = (login, assets, attention, tenants, entities, runs, spend, shadow)
for _room in ROOMS:
    router.include_router(_room.router)


def install_dashboard_handlers(app: FastAPI) -> None:
    """Not signed in: the sign-in form (401). A form without the session's CSRF token: 403."""

    async def not_signed_in(_request: Request, _exc: Exception) -> Response:
        return login.login_page("Sign in first.", status=401)

    async def stale_form(_request: Request, _exc: Exception) -> Response:
        return problem_page("Refused", "This form is stale or was not sent from the dashboard.", session=None,
                            status=403)

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(StaleForm, stale_form)

"""Who may call: the bearer token on every `/v1/` call; on the event endpoint a Standard Webhooks
signature made with the app's secret may stand in for it.

A request that presents a credential must present a good one: a wrong token is refused even
when a good signature comes with it, and a bad signature even when a good token does. A
misconfigured sender then learns of it at once instead of getting through on the other credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext, Context
from api.targets import app_target
from client.ingress import verify_webhook
from contract.errors import Unauthorized

# auto_error=False: a missing header is answered by us, in the API's error shape.
bearer_scheme = HTTPBearer(auto_error=False, description="The API token (HEARTBEATS_API_TOKEN or .data/api-token).")

# Declared so the OpenAPI description offers the bearer scheme; the checks below read the header.
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def check_bearer(context: ApiContext, request: Request) -> bool:
    """True when the request carries the right bearer token, False when it carries none;
    Unauthorized when it carries a wrong one or a malformed Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return False
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("the Authorization header must be `Bearer <token>`")
    if not context.token.matches(credentials.strip()):
        raise Unauthorized("the API token is not valid")
    return True


async def require_token(request: Request, context: Context, _credentials: BearerCredentials) -> None:
    """Dependency of every `/v1/` endpoint but the event one: the bearer token, or 401."""
    if not check_bearer(context, request):
        raise Unauthorized("missing API token: send `Authorization: Bearer <token>`")


@dataclass(frozen=True)
class EventCaller:
    """How an event's sender proved itself; a signed event's id is its verified `webhook-id`."""

    signed_id: str | None


async def require_token_or_signature(request: Request, tenant: str, app: str, context: Context,
                                     _credentials: BearerCredentials) -> EventCaller:
    """Dependency of the event endpoint: the bearer token, a valid Standard Webhooks signature, or both."""
    has_token = check_bearer(context, request)
    if not any(name in request.headers for name in SIGNATURE_HEADERS):
        if not has_token:
            raise Unauthorized("missing credentials: send `Authorization: Bearer <token>`"
                               " or sign the event (webhook-id, webhook-timestamp, webhook-signature)")
        return EventCaller(signed_id=None)
    # Checked here, not as a dependency of this one: the token decides before the path does.
    target = app_target(tenant, app)
    signed_id = await verify_webhook(context.backends.store, tenant=target.tenant, app=target.app,
                                     body=await request.body(), headers=dict(request.headers))
    return EventCaller(signed_id=signed_id)


TokenOrSignature = Annotated[EventCaller, Depends(require_token_or_signature)]

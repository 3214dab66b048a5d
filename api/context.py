"""What every request handler shares: the token, the store and Temporal, the rate limiter, the sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from api.backends import Backends
from api.rate_limit import RateLimiter
from api.sessions import DashboardSessions
from api.settings import ApiSettings
from api.token import ApiToken


@dataclass
class ApiContext:
    settings: ApiSettings
    token: ApiToken
    backends: Backends
    limiter: RateLimiter
    handler_limiter: RateLimiter  # chat and inbound messages, per agent
    sessions: DashboardSessions = field(default_factory=DashboardSessions)


def api_context(request: Request) -> ApiContext:
    """Dependency: the context of the app serving `request`."""
    return request.app.state.context


Context = Annotated[ApiContext, Depends(api_context)]

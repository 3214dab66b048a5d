"""The tenant and app a `/v1/tenants/{tenant}/apps/{app}/...` request is for: checked against the
id rule (400 naming the path part), then charged to that app's rate limit (429)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path

from api.context import ApiContext, Context
from api.errors import HttpRefusal, InvalidField
from manifest.ids import id_problem

TENANT_PATH = Path(description="Tenant id: lowercase letters, digits, '_' or '-', starting with a letter.")
APP_PATH = Path(description="App id (as in the app's manifest).")


@dataclass(frozen=True)
class AppTarget:
    tenant: str
    app: str


def app_target(tenant: str = TENANT_PATH, app: str = APP_PATH) -> AppTarget:
    for field, value in (("tenant", tenant), ("app", app)):
        problem = id_problem(value)
        if problem:
            raise InvalidField(field, problem)
    return AppTarget(tenant, app)


def charge_rate_limit(target: AppTarget, context: ApiContext) -> None:
    """Take one request from the app's allowance; HttpRefusal 429 with Retry-After when it is used up."""
    wait = context.limiter.take(target.tenant, target.app)
    if wait is not None:
        raise HttpRefusal(429, "rate_limited",
                          f"too many requests for app {target.app!r} of tenant {target.tenant!r}"
                          f" (limit {context.limiter.rate:g}/s, burst {context.limiter.burst}); retry in {wait} s",
                          headers={"Retry-After": str(wait)})


Target = Annotated[AppTarget, Depends(app_target)]


def rate_limited_target(target: Target, context: Context) -> AppTarget:
    """Dependency: the checked target, charged to its app's rate limit."""
    charge_rate_limit(target, context)
    return target


RateLimitedTarget = Annotated[AppTarget, Depends(rate_limited_target)]


def rate_limited_tenant(tenant: str = TENANT_PATH, context: Context = None) -> str:  # type: ignore[assignment]
    """Dependency of `/v1/tenants/{tenant}/...` endpoints about the whole tenant: the checked id,
    charged to the tenant's own allowance (apart from its apps')."""
    problem = id_problem(tenant)
    if problem:
        raise InvalidField("tenant", problem)
    charge_rate_limit(AppTarget(tenant, "*"), context)
    return tenant


RateLimitedTenant = Annotated[str, Depends(rate_limited_tenant)]

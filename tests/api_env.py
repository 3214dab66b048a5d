"""The HTTP API on a real store, for tests: the app, and an HTTP client that calls it in process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.app import build_context, create_app
from api.backends import Backends
from api.context import ApiContext
from api.settings import load_settings
from contract.names import task_workflow_id
from store import Store

# The app the ingress tests send to: one task listening for an event and watching a metric.
TENANT = "acme"
APP = "support"
MANIFEST = """\
id: support
agents:
  - id: reviewer
    system_prompt: You review support cases.
    tools: [records]
    tasks:
      - slug: review_cases
        prompt: Review each new case; reply HEARTBEAT_OK when nothing needs doing.
        dedupe: {key: case_id, ttl_hours: 168}
        triggers:
          - {type: event, event: case.created}
          - {type: threshold, metric: error_rate, above: 0.02}
          - {type: manual}
"""
TASK_ID = task_workflow_id(TENANT, APP, "reviewer", "review_cases")

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class ApiEnv:
    context: ApiContext
    http: httpx.AsyncClient
    store: Store


@contextlib.asynccontextmanager
async def api_env(store: Store, tmp_path: Path, *, temporal=None, temporal_address: str | None = None,
                  **settings: object) -> AsyncIterator[ApiEnv]:
    """The app over `store` and `temporal` (else a client it connects to `temporal_address` when
    first needed), called through httpx's ASGI transport."""
    config = load_settings(token=TOKEN, token_file=tmp_path / "api-token", **settings)
    context = build_context(config, backends=Backends(store=store, temporal=temporal, temporal_address=temporal_address))
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield ApiEnv(context, http, store)

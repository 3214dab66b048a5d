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
from store import Store

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

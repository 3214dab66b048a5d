"""What the end-to-end agent tests share: the loopback provider with the SDKs pointed at it, and a
SQLite store with the tenants they use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from drills.provider_server import ProviderServer, text_reply
from store import Store, open_store


@contextlib.contextmanager
def loopback_provider(monkeypatch, reply: str) -> Iterator[ProviderServer]:
    """The loopback Anthropic/OpenAI server, the SDKs' base URLs and keys set to it; `reply` answers
    every call a test did not script."""
    with ProviderServer(api_key="test-key", fallback=text_reply(reply)) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


@contextlib.asynccontextmanager
async def tenant_store(tmp_path: Path, *tenants: str, timezone: str = "UTC") -> AsyncIterator[Store]:
    """A SQLite store at tmp_path/h.db with `tenants` on the OpenAI provider."""
    opened = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        for tenant in tenants:
            await opened.tenants.upsert(tenant=tenant, timezone=timezone, provider="openai")
        yield opened
    finally:
        await opened.close()

"""StatusReader: a page's status queries stop after the first one that gets no answer in time.

A query gets no answer when no worker polls, and also when the workflow's first task has not run
yet (the server holds the query until it has: minutes after installing thousands). The SDK reports
its own deadline as CANCELLED ("Timeout expired"), not DEADLINE_EXCEEDED; reading that as "a
worker may answer the next one" made a page wait QUERY_TIMEOUT once per wave of queries (14 s for
the dashboard's first page right after an install, bench/dashboard_list.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from client import temporal
from client.checks import LoadedManifest
from client.operations import page_heartbeats
from client.sync import install_manifests
from client.temporal import StatusReader, entities_query, view_from_search_attributes
from manifest.loader import parse_manifest
from store import open_store
from tests.temporal_env import CallRecorder, dev_server, recording_client

IDS = [f"heartbeat:acme:sales:agent:hb{k}" for k in range(6)]


class _Execution:
    def __init__(self, workflow_id: str) -> None:
        self.id = workflow_id
        self.typed_search_attributes = TypedSearchAttributes.empty


class _Handle:
    def __init__(self, client: _FakeClient, workflow_id: str) -> None:
        self.client, self.workflow_id = client, workflow_id

    async def query(self, *args, **kwargs):
        self.client.asked.append(self.workflow_id)
        await asyncio.sleep(0)  # the whole first wave is in flight before any answer
        if self.client.hang:
            await asyncio.Event().wait()
        if self.client.answer_after is not None:
            await asyncio.sleep(self.client.answer_after)
            return view_from_search_attributes(self.workflow_id, TypedSearchAttributes.empty)
        raise RPCError("Timeout expired", self.client.status, b"")


class _FakeClient:
    def __init__(self, status: RPCStatusCode = RPCStatusCode.CANCELLED, *, hang: bool = False,
                 answer_after: float | None = None) -> None:
        self.status, self.hang, self.answer_after = status, hang, answer_after
        self.asked: list[str] = []

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self, workflow_id)


@pytest.mark.parametrize("status", [RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED,
                                    RPCStatusCode.FAILED_PRECONDITION])
async def test_after_a_query_that_got_no_answer_the_rest_are_not_asked(status: RPCStatusCode) -> None:
    client = _FakeClient(status)
    reader = StatusReader(client, limit=2)  # type: ignore[arg-type]
    views = await reader.views([_Execution(i) for i in IDS])  # type: ignore[misc]
    assert len(client.asked) == 2  # the first wave only
    assert reader.unanswered == len(IDS)
    assert [view.id for view in views] == sorted(IDS) and all(view.next_run is None for view in views)


async def test_a_query_that_never_returns_is_cut_off_and_counts_as_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(temporal, "QUERY_TIMEOUT", timedelta(seconds=0.05))
    monkeypatch.setattr(temporal, "QUERY_GRACE_SECONDS", 0.05)
    client = _FakeClient(hang=True)
    reader = StatusReader(client, limit=2)  # type: ignore[arg-type]
    await reader.views([_Execution(i) for i in IDS])  # type: ignore[misc]
    assert len(client.asked) == 2
    assert reader.unanswered == len(IDS)


async def test_with_a_budget_queries_that_start_late_get_only_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's queries answer one at a time, each slower than the page's budget allows for all."""
    monkeypatch.setattr(temporal, "QUERY_GRACE_SECONDS", 0.0)
    client = _FakeClient(answer_after=0.04)
    reader = StatusReader(client, limit=1, budget=timedelta(seconds=0.1))  # type: ignore[arg-type]
    views = await reader.views([_Execution(i) for i in IDS])  # type: ignore[misc]
    assert 0 < reader.unanswered and len(client.asked) < len(IDS)  # 6 x 0.04 s cannot fit in 0.1 s
    assert len(views) == len(IDS)
    unbounded = StatusReader(_FakeClient(answer_after=0.04), limit=1)  # type: ignore[arg-type]
    await unbounded.views([_Execution(i) for i in IDS])  # type: ignore[misc]
    assert unbounded.unanswered == 0  # without a budget (the CLI's list of every heartbeat) all are asked


async def test_a_page_of_heartbeats_no_worker_has_started_asks_one_wave(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real dev server, without a worker: the SDK's timeout ends the page's queries after one wave."""
    monkeypatch.setattr(temporal, "QUERY_TIMEOUT", timedelta(seconds=1))
    heartbeats = "\n".join(f"      - {{slug: hb{k:02d}, skill: _internal_app_records, tool: query,"
                           f" params: {{record_type: r}}, interval_minutes: 1440}}" for k in range(50))
    manifest = parse_manifest(f"id: sales\nagents:\n  - id: agent\n    heartbeats:\n{heartbeats}\n")
    store = await open_store(f"sqlite:///{tmp_path / 'h.db'}")
    await store.tenants.upsert(tenant="acme", timezone="UTC")
    try:
        async with dev_server(tmp_path) as (client, _):
            await install_manifests(client, store, [LoadedManifest(Path("sales.yaml"), manifest)], tenant="acme")
            for _ in range(100):  # visibility is eventually consistent
                if (await client.count_workflows(entities_query("acme"))).count == 50:
                    break
                await asyncio.sleep(0.1)
            recorder = CallRecorder()
            page = await page_heartbeats(recording_client(client, recorder), tenant="acme", page_size=50)
    finally:
        await store.close()
    assert len(page.views) == 50 and page.unanswered == 50
    asked = recorder.ids("query")
    assert 0 < len(asked) <= temporal.CONCURRENCY < 50

"""`Idempotency-Key` handling of the HTTP API (api.idempotency) over the real store, on SQLite and
PostgreSQL: a retry gets the first answer without running again, a different request with the
same key gets 409, and a request that failed leaves the key free for its retry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from api.app import build_context, create_app
from api.backends import Backends
from api.idempotency import REPLAYED_HEADER, answer_once, request_fingerprint
from api.settings import load_settings
from api.targets import AppTarget
from contract.errors import Conflict, Unavailable
from store import Store
from store.types import utcnow

TARGET = AppTarget("acme", "crm")
PATH = "/v1/tenants/acme/apps/crm/metrics/error_rate"


class Counter:
    """A request's work: counts its runs and answers with the run number."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.runs = 0
        self.fail_first = fail_first

    async def __call__(self) -> tuple[int, dict]:
        self.runs += 1
        if self.fail_first and self.runs == 1:
            raise Unavailable("Temporal is away")
        return 200, {"run": self.runs}


async def answer(store: Store, run: Counter, *, key: str | None = "k-1", body: dict | None = None,
                 path: str = PATH):
    fingerprint = request_fingerprint(path, body if body is not None else {"value": 1})
    return await answer_once(store, TARGET, route="metrics", key=key, fingerprint=fingerprint, run=run)


async def test_a_retry_gets_the_first_answer_and_runs_nothing(store: Store) -> None:
    run = Counter()
    first = await answer(store, run)
    again = await answer(store, run)
    assert (first.status_code, first.body) == (again.status_code, again.body) == (200, b'{"run":1}')
    assert run.runs == 1
    assert REPLAYED_HEADER.lower() not in first.headers
    assert again.headers[REPLAYED_HEADER.lower()] == "true"


async def test_the_same_request_is_recognised_whatever_its_key_order(store: Store) -> None:
    run = Counter()
    await answer(store, run, body={"value": 1, "note": "a"})
    await answer(store, run, body={"note": "a", "value": 1})
    assert run.runs == 1


@pytest.mark.parametrize("different", [{"body": {"value": 2}}, {"path": PATH.replace("error_rate", "latency")}])
async def test_the_same_key_for_a_different_request_is_a_conflict(store: Store, different: dict) -> None:
    run = Counter()
    await answer(store, run)
    with pytest.raises(Conflict, match="already used for a different request"):
        await answer(store, run, **different)
    assert run.runs == 1


async def test_without_a_key_every_request_runs(store: Store) -> None:
    run = Counter()
    await answer(store, run, key=None)
    await answer(store, run, key=None)
    assert run.runs == 2


async def test_a_failed_request_keeps_nothing_and_its_retry_runs(store: Store) -> None:
    run = Counter(fail_first=True)
    with pytest.raises(Unavailable):
        await answer(store, run)
    retried = await answer(store, run)
    assert (retried.status_code, retried.body, run.runs) == (200, b'{"run":2}', 2)


async def test_a_retry_while_the_first_still_runs_is_a_conflict(store: Store) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow() -> tuple[int, dict]:
        started.set()
        await release.wait()
        return 200, {"done": True}

    first = asyncio.create_task(answer_once(store, TARGET, route="metrics", key="k-1",
                                            fingerprint=request_fingerprint(PATH, {"value": 1}), run=slow))
    await started.wait()
    with pytest.raises(Conflict, match="still being processed"):
        await answer(store, Counter())
    release.set()
    assert (await first).status_code == 200
    assert (await answer(store, Counter())).body == b'{"done":true}'


async def test_the_server_deletes_expired_answers_while_it_runs(store: Store, tmp_path: Path) -> None:
    two_days_ago = utcnow() - timedelta(days=2)
    for key, at in (("old", two_days_ago), ("fresh", utcnow())):
        scope = {"tenant": "acme", "app": "crm", "route": "metrics", "key": key}
        await store.idempotency.claim(**scope, request_hash="h", now=at, lease=timedelta(minutes=5))
        await store.idempotency.finish(**scope, status=200, answer={}, expires_at=at + timedelta(hours=24))

    async def keys() -> list[str]:
        async with store.engine.connect() as conn:
            return sorted((await conn.execute(text("SELECT idempotency_key FROM idempotent_requests"))).scalars())

    assert await keys() == ["fresh", "old"]
    app = create_app(build_context(load_settings(token="t", token_file=tmp_path / "t"), backends=Backends(store=store)))
    async with app.router.lifespan_context(app):
        for _ in range(600):  # a guard against waiting forever, not a speed requirement
            if await keys() == ["fresh"]:
                break
            await asyncio.sleep(0.05)
    assert await keys() == ["fresh"]

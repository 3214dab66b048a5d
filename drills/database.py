"""Database unavailable for 30 s: the worker's store (PostgreSQL) is reached through a loopback TCP proxy
that the drill closes — refusing new connections and cutting live ones — and reopens 30 s later.
A tick asked for during the outage retries its pre-filter with backoff and completes once the database
is back: one receipt, no failure counted. Needs PostgreSQL on 127.0.0.1:5432 (HEARTBEATS_TEST_POSTGRES_URL
or trust auth as postgres/root, as the test suite); a scratch database is created and dropped."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from drills.provider_server import text_reply
from drills.rig import DrillResult, Rig, free_port

OUTAGE_SECONDS = 30.0


class TcpProxy:
    """127.0.0.1:port → target, with `down()` (refuse and cut) and `up()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.transport.abort()
                self._writers.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def postgres_url() -> str | None:
    import os

    import asyncpg

    candidates = [os.environ["HEARTBEATS_TEST_POSTGRES_URL"]] if os.environ.get("HEARTBEATS_TEST_POSTGRES_URL") \
        else [f"postgresql://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")]
    for url in candidates:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            continue
        await conn.close()
        return url
    return None


def with_database(url: str, database: str, *, port: int | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))


async def drill_database_outage(folder: Path, *, outage: float = OUTAGE_SECONDS) -> DrillResult:
    import asyncpg

    result, started = DrillResult(f"database unavailable {outage:g}s (PostgreSQL)"), time.monotonic()
    admin_url = await postgres_url()
    if admin_url is None:
        result.problems.append("PostgreSQL unreachable on 127.0.0.1:5432: drill not run")
        return result
    database = f"hb_drill_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    target = urlsplit(admin_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.up()
    rig = Rig(folder)
    rig.db_url = with_database(admin_url, database)  # the drill reads directly
    worker_url = with_database(admin_url, database, port=proxy.port)  # the worker goes through the proxy
    original_env = rig.env
    rig.env = lambda: {**original_env(), "HEARTBEATS_DATABASE_URL": worker_url}  # type: ignore[method-assign]
    try:
        await rig.start()
        heartbeat = await rig.install("outage")
        rig.provider.fallback = text_reply("HEARTBEAT_OK")
        await rig.client.get_workflow_handle(heartbeat).signal("run_now")  # warm: the worker's pool connects
        await rig.wait_for(lambda: _receipts_at_least(rig, heartbeat, 1))
        await proxy.down()
        await rig.client.get_workflow_handle(heartbeat).signal("run_now")
        await asyncio.sleep(outage)
        early = await rig.receipts("outage", heartbeat)
        if len(early) != 1:
            result.problems.append(f"{len(early)} receipts during the outage (expected the warm-up only)")
        await proxy.up()
        await rig.wait_for(lambda: _receipts_at_least(rig, heartbeat, 2), timeout=150)
        await asyncio.sleep(1.0)
        receipts = await rig.receipts("outage", heartbeat)
        result.due = 1
        result.completed = min(1, len(receipts) - 1)
        result.duplicated = max(0, len(receipts) - 2)
        bad = [r for r in receipts if r.outcome not in ("suppressed", "substantive", "skipped")]
        if bad:
            result.problems.append(f"receipts not completed: {[(r['outcome'], r['reason']) for r in bad]}")
        view = await rig.status(heartbeat)
        if view["status"] != "active" or view["failure_count"] != 0:
            result.problems.append(f"heartbeat {view['status']} with failure_count {view['failure_count']}")
    finally:
        await rig.close()
        await proxy.down()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    result.seconds = time.monotonic() - started
    return result


async def _receipts_at_least(rig: Rig, heartbeat: str, count: int) -> bool:
    return len(await rig.receipts("outage", heartbeat)) >= count

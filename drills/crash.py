"""Crash drills: a real dev server (SQLite file), a real worker subprocess, the real OpenAI SDK against
the loopback provider server (tests/provider_server.py). Each drill SIGKILLs something mid-tick and
counts, from the store: ticks due, ticks completed (receipts), ticks duplicated (a receipt or a
side effect more than once), and checks the heartbeat is still active with no failure counted.

    rig = Rig(folder); await rig.start()
    result = await drill_kill_during_llm_call(rig)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from client.local_server import DevServerConfig, running_dev_server_async
from client.sync import LoadedManifest, install_manifests
from contract.names import heartbeat_workflow_id
from contract.vocabulary import iso_utc
from manifest.loader import parse_manifest
from schedule import next_fire
from store import Store, open_store
from tests.provider_server import ProviderServer, text_reply, tool_reply
from tests.temporal_env import free_port

REPO = Path(__file__).resolve().parent.parent
API_KEY = "drill-key"
WAIT = 90.0  # seconds a drill waits for a tick to complete after the restart

MANIFEST = """\
id: drills
agents:
  - id: bot
    system_prompt: You are the drill bot.
    tools: [records, kv, email]
    heartbeats:
      - slug: tick
        skill: {skill}
        tool: {tool}
        params: {params}
        interval_minutes: {interval}
        invoke_always: true
"""


@dataclass
class DrillResult:
    name: str
    due: int = 0
    completed: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and self.completed == self.due and self.duplicated == 0

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"{verdict}  {self.name:<44} due {self.due:>3}  completed {self.completed:>3}  "
                f"duplicated {self.duplicated:>2}  ({self.seconds:.1f}s)")
        return text + "".join(f"\n      - {problem}" for problem in self.problems)



class Rig:
    """Dev server + store + provider server + one worker subprocess, all on loopback."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.markers = folder / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{folder / 'store.db'}"
        self.config = DevServerConfig(port=free_port(), ui_port=free_port(), headless=True,
                                      db_filename=str(folder / "temporal.db"),
                                      sqlite_pragmas={"journal_mode": "wal", "synchronous": "normal"})
        self.provider = ProviderServer(api_key=API_KEY)
        self.store: Store | None = None
        self.client: Client | None = None
        self.worker: subprocess.Popen | None = None
        self._server_cm = None
        self.worker_log = folder / "worker.log"
        self._saved_skill_modules: tuple[str | None] | None = None  # set by start(), restored by close()

    @property
    def address(self) -> str:
        return f"{self.config.ip}:{self.config.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.provider.env(), "TEMPORAL_ADDRESS": self.address,
                "HEARTBEATS_DATABASE_URL": self.db_url, "HEARTBEATS_SKILL_MODULES": "drills.skills",
                "DRILL_MARKER_DIR": str(self.markers), "PYTHONPATH": str(REPO)}

    async def start(self) -> None:
        self.provider.start()
        self._saved_skill_modules = (os.environ.get("HEARTBEATS_SKILL_MODULES"),)
        os.environ["HEARTBEATS_SKILL_MODULES"] = "drills.skills"  # install-time checks see drill.slow
        self.store = await open_store(self.db_url)
        await self.start_server()
        self.start_worker()

    async def start_server(self) -> None:
        self._server_cm = running_dev_server_async(self.config, quiet=True)
        await self._server_cm.__aenter__()
        self.client = await Client.connect(self.address, data_converter=pydantic_data_converter)

    async def stop_server(self) -> None:
        if self._server_cm is not None:
            await self._server_cm.__aexit__(None, None, None)
            self._server_cm = None

    def start_worker(self) -> None:
        log = self.worker_log.open("a")
        self.worker = subprocess.Popen([sys.executable, str(REPO / "worker.py")], cwd=REPO, env=self.env(),
                                       stdout=log, stderr=subprocess.STDOUT)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()

    async def close(self) -> None:
        self.stop_worker()
        await self.stop_server()
        if self.store is not None:
            await self.store.close()
        self.provider.stop()
        if self._saved_skill_modules is not None:
            (saved,) = self._saved_skill_modules
            if saved is None:
                os.environ.pop("HEARTBEATS_SKILL_MODULES", None)
            else:
                os.environ["HEARTBEATS_SKILL_MODULES"] = saved

    # -- helpers for drills ----------------------------------------------------------------

    async def install(self, tenant: str, *, skill: str = "_internal_app_records", tool: str = "query",
                      params: str = "{record_type: kpi}", interval: int = 60) -> str:
        assert self.store is not None and self.client is not None
        await self.store.tenants.upsert(tenant=tenant, timezone="UTC", provider="openai")
        await self.store.records.put(tenant=tenant, app="drills", record_type="kpi", record_id="signups",
                                    data={"metric": "signups", "value": 182})
        manifest = parse_manifest(MANIFEST.format(skill=skill, tool=tool, params=params, interval=interval))
        await install_manifests(self.client, self.store, [LoadedManifest(Path(f"{tenant}.yaml"), manifest)],
                                tenant=tenant)
        return heartbeat_workflow_id(tenant, "drills", "bot", "tick")

    async def receipts(self, tenant: str, heartbeat: str) -> list[dict]:
        assert self.store is not None
        return await self.store.receipts.list(tenant=tenant, heartbeat_id=heartbeat, limit=1000)

    async def wait_for(self, check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await check():
                return True
            await asyncio.sleep(0.1)
        return False

    async def status(self, heartbeat: str) -> dict:
        assert self.client is not None
        view = await self.client.get_workflow_handle(heartbeat).query("status")
        return view if isinstance(view, dict) else view.model_dump()


async def _finish(rig: Rig, result: DrillResult, tenant: str, heartbeat: str, due: int) -> None:
    """Restart the worker, wait for `due` receipts, count them and check the heartbeat is healthy."""
    rig.start_worker()
    await rig.wait_for(lambda: _count_at_least(rig, tenant, heartbeat, due))
    await asyncio.sleep(1.0)  # a duplicate would show up now
    receipts = await rig.receipts(tenant, heartbeat)
    result.due = due
    result.completed = min(len(receipts), due)
    result.duplicated += max(0, len(receipts) - due)
    bad = [r for r in receipts if r.outcome not in ("suppressed", "substantive", "skipped")]
    if bad:
        result.problems.append(f"receipts not completed: {[(r['outcome'], r['reason'], r['error']) for r in bad]}")
    view = await rig.status(heartbeat)
    if view["status"] != "active" or view["failure_count"] != 0:
        result.problems.append(f"heartbeat {view['status']} with failure_count {view['failure_count']}")


async def _count_at_least(rig: Rig, tenant: str, heartbeat: str, count: int) -> bool:
    return len(await rig.receipts(tenant, heartbeat)) >= count


async def drill_kill_during_prefilter(rig: Rig) -> DrillResult:
    """SIGKILL while the pre-filter (a local activity, here a slow LOW skill) is running."""
    result, started = DrillResult("worker SIGKILL during the pre-filter"), time.monotonic()
    heartbeat = await rig.install("prefilter", skill="drill", tool="slow", params="{}")
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    for marker in rig.markers.glob("prefilter-*"):
        marker.unlink()
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")
    if not await rig.wait_for(lambda: _has_marker(rig), timeout=30):
        result.problems.append("the pre-filter never started")
    rig.kill_worker()
    await _finish(rig, result, "prefilter", heartbeat, due=1)
    result.seconds = time.monotonic() - started
    return result


async def _has_marker(rig: Rig) -> bool:
    return any(rig.markers.glob("prefilter-*"))


async def drill_kill_during_llm_call(rig: Rig) -> DrillResult:
    """SIGKILL while the agent's LLM call is waiting on the provider."""
    result, started = DrillResult("worker SIGKILL during an LLM call"), time.monotonic()
    heartbeat = await rig.install("llm")
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK", delay=3.0)
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")

    async def llm_in_flight() -> bool:
        return len(rig.provider.requests_to("openai")) >= 1

    if not await rig.wait_for(llm_in_flight, timeout=30):
        result.problems.append("the LLM call never started")
    rig.kill_worker()
    await _finish(rig, result, "llm", heartbeat, due=1)
    result.seconds = time.monotonic() - started
    return result


async def drill_kill_between_tool_and_llm(rig: Rig) -> DrillResult:
    """SIGKILL after a tool call's side effects (outbox row, kv write), before the next LLM call ends."""
    result, started = DrillResult("worker SIGKILL between tool call and LLM call"), time.monotonic()
    heartbeat = await rig.install("tools")
    rig.provider.reset()
    rig.provider.script_openai(tool_reply(
        ("call_mail", "email__send", {"to": "ada@example.com", "subject": "Follow-up", "body": "Hi"}),
        ("call_kv", "kv__set", {"key": "touch:ada", "value": {"n": 1}})))
    rig.provider.fallback = text_reply("Sent Ada the follow-up.", delay=3.0)
    await rig.client.get_workflow_handle(heartbeat).signal("run_now")

    async def effects_done() -> bool:
        outbox = await rig.store.outbox.list(tenant="tools", app="drills")
        kv = await rig.store.kv.get(tenant="tools", app="drills", key="touch:ada")
        return bool(outbox) and kv is not None and len(rig.provider.requests_to("openai")) >= 2

    if not await rig.wait_for(effects_done, timeout=30):
        result.problems.append("the tool calls never completed")
    rig.kill_worker()
    await _finish(rig, result, "tools", heartbeat, due=1)
    outbox = await rig.store.outbox.list(tenant="tools", app="drills")
    result.duplicated += max(0, len(outbox) - 1)
    if len(outbox) != 1:
        result.problems.append(f"{len(outbox)} outbox rows (expected exactly 1)")
    tool_calls = [r for r in rig.provider.requests_to("openai")]
    if len(tool_calls) < 2:
        result.problems.append("the LLM call after the tools never happened")
    result.seconds = time.monotonic() - started
    return result


async def drill_restart_server(rig: Rig, heartbeats: dict[str, str]) -> DrillResult:
    """Stop the dev server (SQLite file kept) with the worker running, start it again: every heartbeat
    is still running, every receipt is still there, and a new tick of each completes exactly once."""
    result, started = DrillResult("dev server restart (SQLite file kept)"), time.monotonic()
    before = {tenant: await rig.receipts(tenant, hb) for tenant, hb in heartbeats.items()}
    await rig.stop_server()
    await asyncio.sleep(2.0)
    await rig.start_server()
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    for tenant, heartbeat in heartbeats.items():
        described = await rig.client.get_workflow_handle(heartbeat).describe()
        if described.status is None or described.status.name != "RUNNING":
            result.problems.append(f"{heartbeat} is {described.status} after the restart")
        await rig.client.get_workflow_handle(heartbeat).signal("run_now")
    result.due = len(heartbeats)
    for tenant, heartbeat in heartbeats.items():
        want = len(before[tenant]) + 1
        await rig.wait_for(lambda t=tenant, h=heartbeat, w=want: _count_at_least(rig, t, h, w))
    await asyncio.sleep(1.0)
    for tenant, heartbeat in heartbeats.items():
        after = await rig.receipts(tenant, heartbeat)
        lost = {r.tick_id for r in before[tenant]} - {r.tick_id for r in after}
        if lost:
            result.problems.append(f"{heartbeat}: receipts lost {sorted(lost)}")
        new = len(after) - len(before[tenant])
        result.completed += min(new, 1)
        result.duplicated += max(0, new - 1)
        view = await rig.status(heartbeat)
        if view["status"] != "active" or view["failure_count"] != 0:
            result.problems.append(f"{heartbeat}: {view['status']} with failure_count {view['failure_count']}")
    result.seconds = time.monotonic() - started
    return result



async def drill_server_down_across_due_times(rig: Rig) -> DrillResult:
    """Stop the dev server (SQLite file kept) across two due times of a 5-minute heartbeat. When it
    is back exactly one catch-up tick runs, for the first missed due time, and the next due time is
    back on the grid: no burst. Takes about 7 minutes of wall time."""
    result, started = DrillResult("server down across 2 due times"), time.monotonic()
    rig.provider.reset()
    rig.provider.fallback = text_reply("HEARTBEAT_OK")
    spec = parse_manifest(MANIFEST.format(skill="_internal_app_records", tool="query", params="{record_type: kpi}",
                                          interval=5)).agents[0].heartbeats[0]
    now = datetime.now(UTC)
    # A tenant whose salted 5-minute grid is due 40-100 s from now, so the outage starts before it.
    tenant = next(t for t in (f"catchup{i}" for i in range(100_000))
                  if timedelta(seconds=40) <= next_fire(spec, tenant_id=t, after=now) - now <= timedelta(seconds=100))
    first_due = next_fire(spec, tenant_id=tenant, after=now)
    assert first_due is not None
    heartbeat = await rig.install(tenant, interval=5)

    async def timer_set() -> bool:
        return (await rig.status(heartbeat))["next_run"] == iso_utc(first_due)

    if not await rig.wait_for(timer_set, timeout=30):
        result.problems.append("the first due time was never scheduled")
    await rig.stop_server()
    second_due = first_due + timedelta(minutes=5)
    await asyncio.sleep(max(0.0, (second_due - datetime.now(UTC)).total_seconds()) + 15)
    await rig.start_server()
    result.due = 1  # one catch-up for the two missed due times
    await rig.wait_for(lambda: _count_at_least(rig, tenant, heartbeat, 1))
    await asyncio.sleep(5.0)  # a burst of catch-ups would show up now
    receipts = await rig.receipts(tenant, heartbeat)
    result.completed = min(len(receipts), 1)
    result.duplicated = max(0, len(receipts) - 1)
    if receipts and iso_utc(receipts[-1].at) != iso_utc(first_due):
        result.problems.append(f"catch-up tick at {receipts[-1]['at']}, expected the first missed due {iso_utc(first_due)}")
    expected_next = next_fire(spec, tenant_id=tenant, after=datetime.now(UTC))
    view = await rig.status(heartbeat)
    if expected_next is None or view["next_run"] != iso_utc(expected_next):
        result.problems.append(f"next_run {view['next_run']}, expected the grid's {expected_next}")
    if view["status"] != "active" or view["failure_count"] != 0:
        result.problems.append(f"heartbeat {view['status']} with failure_count {view['failure_count']}")
    result.seconds = time.monotonic() - started
    return result


async def run_crash_drills(folder: Path, *, names: list[str] | None = None,
                           report: Callable[[str], None] = print) -> list[DrillResult]:
    """Run the crash drills in one rig; print one line per drill."""
    rig = Rig(folder)
    await rig.start()
    results: list[DrillResult] = []
    heartbeats: dict[str, str] = {}
    try:
        for name, drill, tenant in (("prefilter", drill_kill_during_prefilter, "prefilter"),
                                    ("llm", drill_kill_during_llm_call, "llm"),
                                    ("tool", drill_kill_between_tool_and_llm, "tools")):
            if names and name not in names:
                continue
            results.append(await drill(rig))
            heartbeats[tenant] = heartbeat_workflow_id(tenant, "drills", "bot", "tick")
            report(results[-1].line())
        if not names or "server" in names:
            results.append(await drill_restart_server(rig, heartbeats))
            report(results[-1].line())
        if not names or "catchup" in names:
            results.append(await drill_server_down_across_due_times(rig))
            report(results[-1].line())
    finally:
        await rig.close()
    if not names or "database" in names:
        from drills.database import drill_database_outage

        (folder / "database").mkdir(exist_ok=True)
        results.append(await drill_database_outage(folder / "database"))
        report(results[-1].line())
    return results

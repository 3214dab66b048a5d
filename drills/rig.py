"""The drills' rig: a dev server, a store, a loopback provider and one worker subprocess, all on loopback.

    rig = Rig(folder); await rig.start()
    heartbeat = await rig.install("acme")      # one heartbeat `tick` of app `drills`
    ...                                        # kill the worker, restart the server, read receipts
    await rig.close()
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from client.checks import LoadedManifest
from client.local_server import DevServerConfig, running_dev_server_async
from client.sync import install_manifests
from contract.names import heartbeat_workflow_id
from drills.provider_server import ProviderServer
from manifest.loader import parse_manifest
from store import Store, open_store
from store.models import Receipt


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
        {budget}
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
                      params: str = "{record_type: kpi}", interval: int = 60, budget: str = "") -> str:
        assert self.store is not None and self.client is not None
        await self.store.tenants.upsert(tenant=tenant, timezone="UTC", provider="openai")
        await self.store.records.put(tenant=tenant, app="drills", record_type="kpi", record_id="signups",
                                    data={"metric": "signups", "value": 182})
        manifest = parse_manifest(MANIFEST.format(skill=skill, tool=tool, params=params, interval=interval,
                                                  budget=budget))
        await install_manifests(self.client, self.store, [LoadedManifest(Path(f"{tenant}.yaml"), manifest)],
                                tenant=tenant)
        return heartbeat_workflow_id(tenant, "drills", "bot", "tick")

    async def receipts(self, tenant: str, heartbeat: str) -> list[Receipt]:
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

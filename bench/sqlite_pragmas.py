"""Timer lateness of the local Temporal dev server under two sets of SQLite pragmas.

For each variant this starts `temporal server start-dev` on free ports with a fresh database file, runs a
worker in this process, starts N workflows that each sleep (`workflow.sleep`) until an absolute due time,
the due times spread evenly over a window, and records each one's lateness: `workflow.now()` when it wakes
minus its due time. Heartbeats are exactly this: long sleeps that should wake on time.

    .venv/bin/python bench/sqlite_pragmas.py                  # 10 and 33 timers/s over 20 s, both variants
    .venv/bin/python bench/sqlite_pragmas.py --rate 10 --spread 10   # a quick look

Results and method: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client.local_server import DevServerConfig, running_dev_server_async  # noqa: E402

TASK_QUEUE = "bench-timers"

VARIANTS: dict[str, dict[str, str | int]] = {
    "default": {},  # SQLite's own defaults: journal_mode=delete, synchronous=full
    "wal+normal": {"journal_mode": "wal", "synchronous": "normal"},
}


@workflow.defn(sandboxed=False)
class TimerWorkflow:
    """Sleep until `due` (epoch seconds) and report how late the wake-up was, in seconds."""

    @workflow.run
    async def run(self, due: float) -> float:
        delay = due - workflow.now().timestamp()
        if delay > 0:
            await workflow.sleep(delay)
        return workflow.now().timestamp() - due


@dataclass
class Result:
    variant: str
    journal_mode: str
    workflows: int
    lead: float
    start_seconds: float
    lateness: list[float]
    drain_seconds: float  # first due time -> last workflow result
    spread: float

    def row(self) -> list[str]:
        ms = sorted(x * 1000 for x in self.lateness)
        p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
        return [
            f"{self.workflows / self.spread:.0f}/s",
            self.variant,
            self.journal_mode,
            str(self.workflows),
            f"{self.workflows / self.start_seconds:.0f}/s",
            f"{statistics.median(ms):.0f}",
            f"{p(0.99):.0f}",
            f"{ms[-1]:.0f}",
            f"{self.workflows / self.drain_seconds:.1f}/s",
        ]


HEADER = ["offered", "pragmas", "journal", "N", "starts", "p50 ms", "p99 ms", "max ms", "completed"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_variant(name: str, pragmas: dict[str, str | int], *, workflows: int, spread: float, lead: float,
                      folder: Path) -> Result:
    db = folder / f"{name.replace('+', '_')}-{workflows}.db"
    port, ui_port = free_port(), free_port()
    config = DevServerConfig(
        port=port, ui_port=ui_port, headless=True, db_filename=str(db), sqlite_pragmas=pragmas, log_level="error"
    )
    async with running_dev_server_async(config, quiet=True) as server:
        client = await Client.connect(server.address, namespace=server.namespace)
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[TimerWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_concurrent_workflow_tasks=100,
        ):
            first_due = time.time() + lead
            step = spread / workflows
            run_id = uuid.uuid4().hex[:8]
            semaphore = asyncio.Semaphore(50)

            async def start(i: int):
                async with semaphore:
                    return await client.start_workflow(
                        TimerWorkflow.run,
                        first_due + i * step,
                        id=f"bench-{run_id}-{i}",
                        task_queue=TASK_QUEUE,
                        execution_timeout=timedelta(minutes=10),
                    )

            t0 = time.monotonic()
            handles = await asyncio.gather(*(start(i) for i in range(workflows)))
            start_seconds = time.monotonic() - t0
            if time.time() > first_due:
                print(f"  warning: starting took {start_seconds:.1f}s, past the first due time; "
                      "the early timers competed with the starts", file=sys.stderr)
            lateness = await asyncio.gather(*(h.result() for h in handles))
            drain_seconds = time.time() - first_due
    with sqlite3.connect(db) as conn:
        journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return Result(name, journal_mode, workflows, lead, start_seconds, list(lateness), drain_seconds, spread)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, action="append",
                        help="timers due per second; repeat for several workloads (default: 10 and 33)")
    parser.add_argument("--spread", type=float, default=20.0, help="seconds the due times span (default 20)")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="run only these")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as folder:
        for rate in args.rate or [10.0, 33.0]:
            workflows = round(rate * args.spread)
            # Room for the start phase (about 60 starts/s with the default pragmas here) before the first due time.
            lead = 3.0 + workflows / 40
            for name in args.variant or list(VARIANTS):
                print(f"{rate:g} timers/s: {workflows} workflows due over {args.spread:g}s, first due "
                      f"{lead:.1f}s after the start phase began; pragmas {name} ...", flush=True)
                results.append(await run_variant(name, VARIANTS[name], workflows=workflows, spread=args.spread,
                                                 lead=lead, folder=Path(folder)))
    print()
    print(table([HEADER, *(r.row() for r in results)]))
    print("\nlateness = workflow.now() at wake-up - due time; starts = workflow starts/s during the start phase;")
    print("offered = timers due per second; completed = N / (last result - first due time)")


if __name__ == "__main__":
    asyncio.run(main())

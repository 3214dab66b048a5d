"""`heartbeats worker`: the same as `python worker.py`."""

from __future__ import annotations

import click


@click.command()
def worker() -> None:
    """Run the worker: every heartbeat workflow and activity, until Ctrl-C or SIGTERM.

    Temporal from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config profiles
    (default localhost:7233, namespace default); the database from HEARTBEATS_DATABASE_URL.

    Tuning: HEARTBEATS_MAX_CACHED_WORKFLOWS (default 10000; keep it at least the number of
    heartbeats this worker serves, ~50 KiB each) and HEARTBEATS_WORKFLOW_SANDBOX (on|off, default
    off: the workflow code is the product's own and CI runs it in the sandbox).

    \b
    Examples:
      heartbeats worker
      TEMPORAL_ADDRESS=temporal.internal:7233 TEMPORAL_NAMESPACE=prod heartbeats worker
    """
    import asyncio

    from worker import serve

    asyncio.run(serve())


COMMANDS = [worker]

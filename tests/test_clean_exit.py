"""D9: a CLI command that talked to Temporal exits with its own exit code, never with a crash at exit.

Without `runtime.connection.own_runtime()`, about 1 run in 10 of `status` / `run-now` ended in
"Fatal Python error: PyGILState_Release: thread state ... must be current when releasing"
(exit 134) or a segfault (exit 139) after printing its full output: an SDK thread was still handing
the last result to asyncio when the interpreter began to finalise (see `own_runtime`).

The end-to-end test runs the real console entry point in subprocesses, several at a time (stdout
and stderr piped), against a dev server with a worker: successful and failing commands, every exit
code and every output checked. The in-process test pins the mechanism: once `run_with_client` or
`run_with_temporal` returns or raises, the SDK runtime of the command is gone (its threads joined).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from store import open_store
from tests.temporal_env import REPO

TENANT = "acme"
GOOD = "heartbeat:acme:exits:checker:quiet"
UNKNOWN = "heartbeat:acme:exits:checker:nope"
RUNS = 48  # each kind 16 times; before the fix ~1 run in 8 crashed: P(all 48 fine) ~ 0.1%
PARALLEL = 4  # CLI processes at once: keeps the test short (~25 s on 2 idle cores, ~45 s under load)
VIEW_FIELDS = ["id", "tenant", "app", "agent", "slug", "status", "failure_count", "next_run", "last_run",
               "last_heartbeat_ok_at", "ignored_signals"]  # fmt: skip

MANIFEST = """\
id: exits
name: Exit codes
version: 1.0.0
agents:
  - id: checker
    system_prompt: Nothing to do.
    heartbeats:
      - slug: quiet
        skill: _internal_app_records
        tool: query
        params: {record_type: none}   # no such records: every tick is quiet, no agent turn
        schedule_type: weekly
        day_of_week: 6
        time_of_day: "03:00"
"""


async def heartbeats(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the `heartbeats` console entry point in a subprocess, output piped: (code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def problem(kind: str, code: int, out: str, err: str) -> str | None:
    """What is wrong with one run's exit code and output, or None."""
    if kind == "status":
        if code != 0:
            return f"exit {code}"
        try:
            view = json.loads(out)
        except ValueError:
            return "stdout is not complete JSON"
        if list(view) != VIEW_FIELDS or view["id"] != GOOD:
            return f"unexpected view {view}"
    elif kind == "run-now":
        if code != 0:
            return f"exit {code}"
        if out != f"sent run_now to {GOOD}: a tick runs now; see `heartbeats runs ID`\n":
            return f"stdout {out!r}"
    else:  # a failing command keeps exit 1 and its one-line message
        if code != 1:
            return f"exit {code}"
        if out != "" or err != f"error: no heartbeat or task workflow {UNKNOWN} (see `heartbeats list`)\n":
            return f"stdout {out!r}, stderr {err!r}"
    if "Fatal Python error" in err or "Traceback" in err:
        return "crash report on stderr"
    return None


async def test_commands_exit_with_their_own_code_and_full_output(tmp_path: Path) -> None:
    from tests.temporal_env import dev_server, running_worker

    url = f"sqlite:///{tmp_path / 'exits.db'}"
    store = await open_store(url)
    try:
        await store.tenants.upsert(tenant=TENANT, timezone="UTC")
        async with dev_server(tmp_path) as (client, address), running_worker(client, store):
            env = {**os.environ, "HEARTBEATS_DATABASE_URL": url, "TEMPORAL_ADDRESS": address}
            env.pop("TEMPORAL_NAMESPACE", None)
            manifest = tmp_path / "exits.yaml"
            manifest.write_text(MANIFEST, encoding="utf-8")
            code, out, err = await heartbeats(env, "install", str(manifest), "--tenant", TENANT)
            assert code == 0, out + err

            kinds = ["status", "run-now", "unknown"] * (RUNS // 3)
            limit = asyncio.Semaphore(PARALLEL)

            async def one(kind: str) -> str | None:
                args = {"status": ("status", GOOD, "--json"), "run-now": ("run-now", GOOD),
                        "unknown": ("status", UNKNOWN)}[kind]  # fmt: skip
                async with limit:
                    code, out, err = await heartbeats(env, *args)
                found = problem(kind, code, out, err)
                return None if found is None else f"{kind}: {found}\n{err[-300:]}"

            started = time.monotonic()
            problems = [p for p in await asyncio.gather(*(one(kind) for kind in kinds)) if p]
            elapsed = time.monotonic() - started
            assert not problems, f"{len(problems)} of {len(kinds)} runs went wrong ({elapsed:.0f} s):\n" + "\n".join(
                problems[:5]
            )
    finally:
        await store.close()


def runtime_of(client: Any) -> Any:
    from temporalio.runtime import Runtime

    return client.service_client.config.runtime or Runtime.default()  # the default: never released


async def test_the_command_runtime_is_gone_when_the_command_returns_or_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CLI helpers that run a command's asyncio main: after success and after a Temporal error."""
    from cli.runner import run_with_client as run_client
    from cli.runner import run_with_temporal
    from contract.errors import HeartbeatsError
    from tests.temporal_env import dev_server

    async with dev_server(tmp_path) as (_, address):
        monkeypatch.setenv("TEMPORAL_ADDRESS", address)
        monkeypatch.setenv("HEARTBEATS_DATABASE_URL", f"sqlite:///{tmp_path / 'runtime.db'}")
        monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
        seen: list[weakref.ref[Any]] = []

        async def count(client: Any) -> int:
            seen.extend((weakref.ref(client), weakref.ref(runtime_of(client))))
            return (await client.count_workflows()).count

        async def refused(client: Any) -> None:
            seen.extend((weakref.ref(client), weakref.ref(runtime_of(client))))
            await client.get_workflow_handle(UNKNOWN).describe()  # NOT_FOUND: a UserError

        async def nothing_to_prepare(store: Any) -> None:
            return None

        assert await asyncio.to_thread(run_client, count) == 0
        with pytest.raises(HeartbeatsError, match="Temporal refused the request"):
            await asyncio.to_thread(run_client, refused)
        with_store = lambda action: run_with_temporal(nothing_to_prepare, lambda client, store, _: action(client))  # noqa: E731
        assert await asyncio.to_thread(with_store, count) == 0
        with pytest.raises(HeartbeatsError, match="Temporal refused the request"):
            await asyncio.to_thread(with_store, refused)
        assert len(seen) == 8
        # The SDK runtime lives as long as its Python object and its clients: all gone means its
        # Tokio runtime was shut down and its threads joined, before the command returned.
        assert all(ref() is None for ref in seen), "a client or its runtime outlived its command"

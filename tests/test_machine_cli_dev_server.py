"""A newcomer's path through state-machine workflows, from the CLI only, on a real dev server.

Every step is the `heartbeats` command in a subprocess (validate, tenant set, install, worker,
workflow start/show/transition/list/graph, documents show), against the example manifest under
manifests/workflows/: what README and docs/workflows.md tell a newcomer to type.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.temporal_env import dev_server

REPO = Path(__file__).resolve().parent.parent
HEARTBEATS = str(Path(sys.executable).parent / "heartbeats")
EXAMPLE = REPO / "manifests" / "workflows" / "expenses.yaml"


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([HEARTBEATS, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    if ok:
        assert done.returncode == 0, f"heartbeats {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


async def wait_for(env: dict[str, str], run_id: str, status: str) -> dict:
    shown: dict = {}
    for _ in range(150):
        shown = json.loads((await asyncio.to_thread(run, env, "workflow", "show", run_id, "--json")).stdout)
        if shown["status"] == status:
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"{run_id} never became {status}: {shown}")


async def test_validate_install_start_show_transition_graph_from_the_cli(tmp_path):
    async with dev_server(tmp_path) as (_, address):
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "HEARTBEATS_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
        validated = await asyncio.to_thread(run, env, "validate", str(EXAMPLE))
        assert "1 workflow" in validated.stdout
        await asyncio.to_thread(run, env, "tenant", "set", "demo", "--timezone", "Europe/Berlin")
        await asyncio.to_thread(run, env, "install", str(EXAMPLE), "--tenant", "demo")
        worker = subprocess.Popen([HEARTBEATS, "worker"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            started = json.loads((await asyncio.to_thread(
                run, env, "workflow", "start", "expense_approval", "--tenant", "demo", "--app", "expenses",
                "--key", "claim-1", "--var", "AMOUNT=120", "--var", "NOTE=taxi", "--json")).stdout)
            run_id = started["id"]
            assert run_id == "machine:demo:expenses:expense_approval:claim-1"
            waiting = await wait_for(env, run_id, "waiting")
            assert waiting["place"] == "awaiting_approval"
            assert {o["transition"] for o in waiting["waiting_for"]} == {"approve", "reject"}
            assert waiting["variables"]["FILED"]["content"] == {"amount": 120, "note": "taxi", "status": "filed"}

            # The same key again is refused; a payload the schema refuses changes nothing.
            again = await asyncio.to_thread(run, env, "workflow", "start", "expense_approval", "--tenant", "demo",
                                            "--app", "expenses", "--key", "claim-1", ok=False)
            assert again.returncode == 1 and "already started" in again.stderr
            refused = await asyncio.to_thread(run, env, "workflow", "transition", run_id, "approve", "--payload",
                                              '{"approver": ""}', ok=False)
            assert refused.returncode == 1 and "payload refused" in refused.stderr and "Traceback" not in refused.stderr
            assert (await wait_for(env, run_id, "waiting"))["steps_total"] == 1

            moved = await asyncio.to_thread(run, env, "workflow", "transition", run_id, "approve", "--payload",
                                            '{"approver": "ada"}')
            assert "approve" in moved.stdout
            done = await wait_for(env, run_id, "completed")
            assert [(s["transition"], s["target"]) for s in done["steps"]] == [
                ("file_expense", "awaiting_approval"), ("approve", "approved"), ("close_approved", "end")]
            shown = await asyncio.to_thread(run, env, "workflow", "show", run_id)
            assert "completed at end" in shown.stdout and "close_approved" in shown.stdout

            document = json.loads((await asyncio.to_thread(
                run, env, "documents", "show", "expense", "--tenant", "demo", "--app", "expenses", "--json")).stdout)
            assert document["version"] == 2
            assert document["content"] == {"amount": 120, "note": "taxi", "status": "approved", "approver": "ada"}

            listed = []
            for _ in range(50):  # visibility is eventually consistent
                listed = json.loads((await asyncio.to_thread(run, env, "workflow", "list", "--tenant", "demo",
                                                             "--json")).stdout)
                if listed and listed[0]["status"] == "completed":
                    break
                await asyncio.sleep(0.2)
            assert [(r["id"], r["status"], r["place"]) for r in listed] == [(run_id, "completed", "end")]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        graph = await asyncio.to_thread(run, env, "workflow", "graph", "expense_approval", str(EXAMPLE))
        assert "awaiting_approval --> approved: approve (manual)" in graph.stdout
        assert "awaiting_approval --> rejected: approve after 72h" in graph.stdout

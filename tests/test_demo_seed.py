"""What `heartbeats demo` seeds (cli/demo_seed.py), on a real dev server and worker with the example
apps of manifests/: each area of the dashboard has data, read back through the library functions
the CLI, the HTTP API and the dashboard call.

- budgets: spend ledger rows in USD (the offline models priced by the tenant), receipts with their
  cost, and the content drafter held at its monthly ceiling: one open `budget_monthly` item;
- shadow: the sales cadence ran in shadow, its cases decided but the newest, one disagreeing; one
  open `shadow_review` item;
- a failing heartbeat: the X monitor's runs fail (`budget_exceeded`) until health lists it;
- a state-machine run waiting for its manual approval;
- the dashboard's pages show each of these;
- seeding again (a second `make demo` on the same data) runs nothing that is there already.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cli.demo_seed import (
    DEMO_TENANT,
    DISAGREEING,
    DRAFTER,
    DRAFTER_HOLD_SUBJECT,
    FAILING,
    RUN_NOW_TARGET,
    SHADOW,
    SHADOW_RUNS,
    seed_runs,
    seed_tenant,
)
from client.budgets import queue_items, spend
from client.checks import load_manifests
from client.machines import show_run
from client.operations import health, heartbeat_runs
from client.shadow import shadow_report
from client.sync import install_manifests
from contract.budget import QUEUE_BUDGET_MONTHLY
from contract.heartbeat import FAILING_THRESHOLD
from contract.shadow import QUEUE_SHADOW_REVIEW
from store import open_store
from tests.api_env import TOKEN, api_env
from tests.temporal_env import dev_server, running_worker

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "manifests").glob("*.yaml")) + sorted((REPO / "manifests" / "workflows").glob("*.yaml"))


async def run_nows(store, workflow_id: str):
    """The receipts of the heartbeat's run-nows, newest first."""
    return [r for r in await heartbeat_runs(store, workflow_id, limit=1000) if r.trigger == "run_now"]


async def eventually(read, check, *, tries: int = 100):
    """`read()` until `check` holds for it (visibility and the workflows catch up within seconds)."""
    for _ in range(tries):
        value = await read()
        if check(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never held: {value!r}")


async def test_the_demo_seeds_every_area_of_the_dashboard(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'heartbeats.db'}")
    try:
        async with dev_server(tmp_path) as (client, _), running_worker(client, store):
            await seed_tenant(store)
            await install_manifests(client, store, load_manifests(EXAMPLES), tenant=DEMO_TENANT)
            seeded = await seed_runs(client, store)

            # The run-now: a substantive receipt with its cost.
            assert seeded.run_now is not None and seeded.run_now.outcome == "substantive"
            assert seeded.run_now.nano_usd and seeded.run_now.nano_usd > 0

            # Budgets: spend per agent in USD, the drafter's runs cost something until it was held.
            by_agent = {line.key: line for line in await spend(store, tenant=DEMO_TENANT, by="agent")}
            assert {"marketing/cmo", "marketing/content_drafter", "sales/outreach"} <= set(by_agent)
            assert all(line.nano_usd > 0 and line.unpriced_calls == 0 for line in by_agent.values())
            by_day = await spend(store, tenant=DEMO_TENANT, by="day")
            assert sum(line.calls for line in by_day) == sum(line.calls for line in by_agent.values())
            items = await queue_items(store, tenant=DEMO_TENANT)
            holds = [i for i in items if i.kind == QUEUE_BUDGET_MONTHLY]
            assert [i.subject for i in holds] == [DRAFTER_HOLD_SUBJECT]
            assert seeded.hold is not None and seeded.hold.id == holds[0].id
            drafter = await run_nows(store, DRAFTER)  # (a scheduled tick may come in between)
            assert len(drafter) == seeded.drafter_runs >= 2
            assert (drafter[0].outcome, drafter[0].reason) == ("refused", "budget_monthly")
            assert all(r.outcome == "substantive" and r.nano_usd > 0 for r in drafter[1:])

            # Shadow: cases run in shadow, all but the newest decided, one disagreeing; one review item.
            report = await shadow_report(store, workflow_id=SHADOW)
            assert (report.shadow, report.cases, report.compared) == (True, SHADOW_RUNS, SHADOW_RUNS - 1)
            assert report.disagree == 1 and report.agree == SHADOW_RUNS - 2
            assert report.disagreeing[0]["proposed"] == [] and report.disagreeing[0]["decided"] == DISAGREEING
            assert report == seeded.shadow
            assert [i.subject for i in items if i.kind == QUEUE_SHADOW_REVIEW] == [SHADOW]
            assert all(r.reason == "shadow" for r in await heartbeat_runs(store, SHADOW, limit=100))

            # A failing heartbeat: each run refused before its call; health lists it.
            assert seeded.failing.status == "active" and seeded.failing.failure_count >= FAILING_THRESHOLD
            failed = await heartbeat_runs(store, FAILING, limit=100)
            assert {(r.outcome, r.reason) for r in failed} == {("failed", "budget_exceeded")}
            assert "above per_call_tokens 6000" in failed[0].error
            listed = await eventually(lambda: health(client, tenant=DEMO_TENANT),
                                      lambda found: any(v.id == FAILING for v in found.failing))
            assert [v.id for v in listed.failing] == [FAILING] and listed.disabled == []

            # A state-machine run waiting for its manual approval.
            await eventually(lambda: show_run(client, seeded.waiting), lambda view: view.status == "waiting")

            # The dashboard renders each area with this data.
            async with api_env(store, tmp_path, temporal=client) as env:
                await env.http.get("/login", params={"token": TOKEN})
                pages = {path: (await env.http.get(path)).text for path in (
                    "/", "/tenants/demo/spend", f"/shadow/{SHADOW}", f"/entities/{DRAFTER}",
                    f"/entities/{FAILING}", f"/runs/{seeded.waiting}", "/tenants/demo/apps/marketing")}
            attention = pages["/"]
            assert "monthly budget hold of marketing/content_drafter" in attention
            assert f"/shadow/{SHADOW}" in attention and FAILING in attention and seeded.waiting in attention
            assert "held: its calls are refused" in pages["/tenants/demo/spend"]
            assert f"{SHADOW_RUNS} cases run in shadow" in pages[f"/shadow/{SHADOW}"]
            assert "agree with the proposal" in pages[f"/shadow/{SHADOW}"]  # the newest case waits for a decision
            assert "budget_monthly" in pages[f"/entities/{DRAFTER}"] and "USD" in pages[f"/entities/{DRAFTER}"]
            assert "budget_exceeded" in pages[f"/entities/{FAILING}"]
            assert "Fire approve" in pages[f"/runs/{seeded.waiting}"]
            assert "marketing/content_drafter/" in pages["/tenants/demo/apps/marketing"]

            # A second demo on the same data: nothing that is there already runs again.
            before = {wid: len(await run_nows(store, wid)) for wid in (RUN_NOW_TARGET, DRAFTER, SHADOW, FAILING)}
            again = await seed_runs(client, store)
            after = {wid: len(await run_nows(store, wid)) for wid in before}
            assert after == {**before, RUN_NOW_TARGET: before[RUN_NOW_TARGET] + 1}  # the one run-now, each time
            assert again.drafter_runs == 0 and again.hold == seeded.hold
            assert again.shadow == report
            assert again.failing.failure_count >= FAILING_THRESHOLD
            assert again.waiting == seeded.waiting
    finally:
        await store.close()

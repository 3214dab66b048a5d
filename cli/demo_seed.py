"""What `heartbeats demo` puts in tenant `demo`, so every area of the dashboard has something in it.

All of it goes through the product's own paths (the library functions the CLI calls, real runs on
the worker), none of it is written behind the product's back:

- the tenant, its prices for the offline models (so spend shows in USD) and sample records;
- one run-now of the CMO's KPI check (its receipt is printed);
- budgets: the content drafter (manifests/cmo.yaml, `monthly_usd: 0.04`) is run until the gateway
  holds it at its monthly ceiling: spend ledger rows and one open `budget_monthly` queue item;
- shadow mode: the sales cadence (manifests/sales.yaml, in shadow) runs a few times, and human
  decisions are recorded for all its cases but the newest, one of them disagreeing with the agent:
  a shadow report and an open `shadow_review` queue item;
- a failing heartbeat: a burst of new mentions makes each call of the X monitor's check larger
  than its `per_call_tokens`, so each run fails (`budget_exceeded`) until its failure count
  reaches the failing threshold;
- a state-machine run (manifests/workflows/expenses.yaml) left waiting for its manual approval.

Run again on the same store and Temporal (a second `make demo`), it adds only what is missing:
a hold that is open, shadow cases that were run and decided, a heartbeat already failing or
disabled and a run still waiting are left as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client.budgets import QueueItem, queue_items
from client.data import put_record, set_tenant
from client.machines import show_run, start_run
from client.operations import heartbeat_status, signal_heartbeat
from client.shadow import ShadowReport, decide, shadow_report
from contract.budget import QUEUE_BUDGET_MONTHLY
from contract.errors import Conflict
from contract.heartbeat import FAILING_THRESHOLD, HeartbeatStatusView
from contract.names import SIGNAL_RUN_NOW, heartbeat_workflow_id, machine_workflow_id
from contract.shadow import HEARTBEAT_CASE_PREFIX

if TYPE_CHECKING:
    from temporalio.client import Client

    from store import Store
    from store.models import Receipt

DEMO_TENANT = "demo"
DEMO_TIMEZONE = "Europe/Berlin"
ACTOR = "demo"  # who the demo's run-nows and shadow decisions are audited as

# The offline provider's models priced like a small, a mid-size and a large hosted model (USD per
# million input and output tokens): a tenant's own prices, as `heartbeats tenant set --price` sets
# them. Without them the offline models cost $0 and no budget is ever reached.
DEMO_PRICES = ("offline-cheap=1,5", "offline-standard=3,15", "offline-premium=5,25")

# The heartbeat the demo fires once: its pre-filter finds the sample KPIs, so the agent wakes.
RUN_NOW_TARGET = heartbeat_workflow_id(DEMO_TENANT, "marketing", "cmo", "hourly_kpi")
# Run until its agent is held at its monthly ceiling (each run costs about a tenth of a cent).
DRAFTER = heartbeat_workflow_id(DEMO_TENANT, "marketing", "content_drafter", "pending_drafts")
DRAFTER_HOLD_SUBJECT = "marketing/content_drafter"
MAX_DRAFTER_RUNS = 20
# In shadow: this many runs (cases); all but the newest decided, one of them against the agent.
SHADOW = heartbeat_workflow_id(DEMO_TENANT, "sales", "outreach", "daily_cadence")
SHADOW_RUNS = 4
AGREEING = []  # the sales team sent nothing that day: the offline agent proposes nothing either
DISAGREEING = [{"tool": "email.send",
                "arguments": {"to": "ada@example.com", "subject": "Q4 outbound: a third touch"}}]
# Fails each run while the burst of mentions is there.
FAILING = heartbeat_workflow_id(DEMO_TENANT, "marketing", "x_monitor", "mentions")
# The expense claim left waiting for its approval.
EXPENSE_KEY = "demo-claim"
WAITING = ("pending", "running", "waiting")

RECEIPT_TIMEOUT = 15.0

MENTION_BURST = 24
_MENTION = ("Tried the new heartbeats launch this morning: the pre-filter idea is neat, but how do the"
            " budgets work when a tenant runs a hundred agents? Asking for my team, we are evaluating it.")

# Records the example apps' pre-filters find: active campaigns for the sales cadence, KPIs for the
# CMO, a draft for the drafter, and the burst of new mentions that the X monitor cannot take in one call.
SAMPLE_RECORDS = [
    ("sales", "campaign", "q4-outbound", {"name": "Q4 outbound", "status": "active", "leads": 12}),
    ("sales", "campaign", "spring-webinar", {"name": "Spring webinar", "status": "paused", "leads": 4}),
    ("sales", "lead", "ada", {"name": "Ada Lovelace", "email": "ada@example.com", "campaign_id": "q4-outbound",
                              "touches": 2}),
    ("marketing", "kpi", "signups", {"metric": "signups", "value": 182, "target": 250, "period": "week"}),
    ("marketing", "kpi", "cac", {"metric": "cac_usd", "value": 41.5, "target": 35, "period": "week"}),
    ("marketing", "x_post", "launch", {"status": "draft", "text": "We shipped heartbeats."}),
] + [
    ("marketing", "mention", f"launch-{n:02}", {"status": "new", "author": f"@reader{n:02}", "followers": 150 * n,
                                                 "text": _MENTION, "url": f"https://x.example/status/{1000 + n}"})
    for n in range(1, MENTION_BURST + 1)
]


@dataclass(frozen=True)
class DemoSeed:
    """What the demo's runs left behind, for its summary (and its test)."""

    run_now: Receipt | None  # the KPI check's receipt
    hold: QueueItem | None  # the drafter's open budget_monthly item
    drafter_runs: int  # run-nows it took (0: held before this demo started)
    shadow: ShadowReport
    failing: HeartbeatStatusView
    waiting: str  # the expense run's ID


async def seed_tenant(store: Store) -> None:
    """Tenant `demo` with its prices and sample records (idempotent: upserts)."""
    await set_tenant(store, tenant=DEMO_TENANT, timezone=DEMO_TIMEZONE, prices=DEMO_PRICES)
    for app, record_type, record_id, data in SAMPLE_RECORDS:
        await put_record(store, tenant=DEMO_TENANT, app=app, record_type=record_type, record_id=record_id, data=data)


async def seed_runs(client: Client, store: Store) -> DemoSeed:
    """The runs and decisions of the module docstring, on the installed example apps; the heartbeats
    are independent, so they run side by side."""
    run_now, (hold, drafter_runs), shadow, failing, waiting = await asyncio.gather(
        run_once(client, store, RUN_NOW_TARGET), reach_monthly_hold(client, store), shadow_cases(client, store),
        fail_until_failing(client, store), waiting_run(client, store))
    return DemoSeed(run_now, hold, drafter_runs, shadow, failing, waiting)


async def run_once(client: Client, store: Store, workflow_id: str) -> Receipt | None:
    """Run-now (audited as the demo) and the receipt of that run, or None when none came in time."""
    before = {r.tick_id for r in await store.receipts.list(tenant=DEMO_TENANT, heartbeat_id=workflow_id, limit=50)}
    await signal_heartbeat(client, workflow_id, SIGNAL_RUN_NOW, audit=store.audit, actor=ACTOR)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECEIPT_TIMEOUT
    while loop.time() < deadline:
        for receipt in await store.receipts.list(tenant=DEMO_TENANT, heartbeat_id=workflow_id, limit=50):
            if receipt.tick_id not in before:
                return receipt
        await asyncio.sleep(0.05)
    return None


async def monthly_hold(store: Store) -> QueueItem | None:
    items = await queue_items(store, tenant=DEMO_TENANT)
    return next((i for i in items if i.kind == QUEUE_BUDGET_MONTHLY and i.subject == DRAFTER_HOLD_SUBJECT), None)


async def reach_monthly_hold(client: Client, store: Store) -> tuple[QueueItem | None, int]:
    """Run the drafter until the gateway holds it at its monthly ceiling: (the open item, runs it took).
    None after MAX_DRAFTER_RUNS (an operator waived the ceiling for this month, or raised it)."""
    runs = 0
    while (held := await monthly_hold(store)) is None and runs < MAX_DRAFTER_RUNS:
        runs += 1
        if await run_once(client, store, DRAFTER) is None:
            break
    return held, runs


async def shadow_cases(client: Client, store: Store) -> ShadowReport:
    """SHADOW_RUNS cases of the sales cadence in shadow; a human decision for each but the newest, the
    oldest one disagreeing with the agent (the team emailed Ada, the agent proposed nothing)."""
    report = await shadow_report(store, workflow_id=SHADOW)
    for _ in range(SHADOW_RUNS - report.cases):
        await run_once(client, store, SHADOW)
    receipts = await store.receipts.list(tenant=DEMO_TENANT, heartbeat_id=SHADOW, limit=1000)
    ran = [f"{HEARTBEAT_CASE_PREFIX}{r.tick_id}" for r in reversed(receipts) if r.reason == "shadow"]
    decided = {case.case_key for case in await store.shadow.cases(tenant=DEMO_TENANT, workflow_id=SHADOW)
               if case.decided is not None}
    undecided = [case for case in ran[:-1] if case not in decided]
    for n, case in enumerate(undecided):
        disagree = n == 0 and report.disagree == 0 and not decided
        await decide(store, workflow_id=SHADOW, case=case, actions=DISAGREEING if disagree else AGREEING, actor=ACTOR)
    return await shadow_report(store, workflow_id=SHADOW)


async def fail_until_failing(client: Client, store: Store) -> HeartbeatStatusView:
    """Run the X monitor until it counts FAILING_THRESHOLD failures in a row (unless it does already,
    or is disabled); its status view."""
    view, _ = await heartbeat_status(client, FAILING)
    for _ in range(FAILING_THRESHOLD - view.failure_count if view.status == "active" else 0):
        await run_once(client, store, FAILING)
    view, _ = await heartbeat_status(client, FAILING)
    return view


async def waiting_run(client: Client, store: Store) -> str:
    """A run of the expense workflow waiting for its approval: the demo's earlier one while it still
    waits, else a new one (demo-claim, demo-claim-2, ...)."""
    for n in range(1, 100):
        key = EXPENSE_KEY if n == 1 else f"{EXPENSE_KEY}-{n}"
        try:
            started = await start_run(client, store, tenant=DEMO_TENANT, app="expenses", workflow="expense_approval",
                                      key=key, variables={"AMOUNT": 120, "NOTE": "taxi to the airport"})
            return started.id
        except Conflict:
            run_id = machine_workflow_id(DEMO_TENANT, "expenses", "expense_approval", key)
            if (await show_run(client, run_id)).status in WAITING:
                return run_id
    raise Conflict(f"no free key for a new expense run: {EXPENSE_KEY}-2..99 were all taken")

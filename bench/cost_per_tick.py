"""Cost per tick: tokens and USD per substantive tick of a heartbeat over 100 ticks of its dedicated
thread, with Anthropic prompt caching and without.

    .venv/bin/python bench/cost_per_tick.py            # 100 ticks each way
    .venv/bin/python bench/cost_per_tick.py --ticks 30

The time-skipping test server runs one heartbeat (every 5 minutes, `invoke_always`, dedicated
thread, 6 pre-filter rows) for N ticks with the product's worker; its turns go through the real
`anthropic` SDK to the loopback server, which answers every tick substantively (so the thread grows)
and reports usage as Anthropic does: the prefix up to the request's last `cache_control` breakpoint
is a cache write the first time and a cache read when a later request repeats it
(drills.provider_server.PromptCache; token counts are its characters/4 rule, not Anthropic's
tokenizer). The second run sends the same requests with the breakpoints ignored (no cache hits).
Costs are the spend ledger's, priced by genai-prices for claude-haiku-4-5.

Reports per run: tick 1, the mean of ticks 2-10, of the middle 10 and of the last 10 (input tokens,
of which cached, USD per tick), and the growth of input tokens: the thread's history window is
bounded (about 4,000 tokens, 40 messages), so once it is full a tick's input stays flat (last 10 vs
middle 10 ≈ 1), whatever the thread's length. Writes bench/results/cost_per_tick.json. Method and
results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.install import installed_hash, manifest_json  # noqa: E402
from contract.budget import usd  # noqa: E402
from contract.heartbeat import HeartbeatConfig, HeartbeatInput  # noqa: E402
from contract.names import TASK_QUEUE  # noqa: E402
from drills.provider_server import PromptCache, ProviderServer, Reply  # noqa: E402
from manifest.loader import parse_manifest  # noqa: E402
from store import open_store  # noqa: E402
from tests.temporal_env import running_worker, time_skipping_env  # noqa: E402
from workflows.heartbeat import HeartbeatWorkflow  # noqa: E402

MODEL = "claude-haiku-4-5"
MANIFEST = """\
id: marketing
agents:
  - id: cmo
    system_prompt: |
      You are the CMO of an AI-first marketing org. You watch the KPIs of every running campaign,
      compare them with their targets and the plan of the quarter, and act: you draft posts,
      adjust budgets between channels, and brief the team. You keep your notes short and factual.
      Every tick you get the latest KPI rows; say what changed since your last note and what you do.
    tools: [records, kv, memory]
    heartbeats:
      - slug: kpi
        skill: _internal_app_records
        tool: query
        params: {record_type: kpi}
        interval_minutes: 5
        invoke_always: true
        conversation_mode: dedicated
        prompt: Review the KPI delta against the targets; act on what is off-pace.
"""


async def run(ticks: int, *, cached: bool) -> dict:
    cache = PromptCache()
    with tempfile.TemporaryDirectory() as folder, ProviderServer(api_key="bench-key") as provider:
        os.environ.update(provider.env())

        def answer(request) -> Reply:
            text = f"Tick note: signups 182 of 250 (-27%), CAC up 4%; moved $400 from display to search; " \
                   f"briefed the team on the launch post (request {len(provider.requests)})."
            if cached:
                return cache.reply(request, text=text, tokens_out=60)
            from drills.provider_server import loopback_token_count
            return Reply(text=text, tokens_in=loopback_token_count(request.body), tokens_out=60)

        provider.fallback = answer
        store = await open_store(f"sqlite:///{folder}/bench.db")
        parsed = parse_manifest(MANIFEST)
        await store.tenants.upsert(tenant="bench", timezone="UTC", provider="anthropic", model_cheap=MODEL)
        for index in range(6):
            await store.records.put(tenant="bench", app="marketing", record_type="kpi", record_id=f"k{index}",
                                    data={"metric": f"metric-{index}", "value": 100 + index, "target": 150})
        await store.apps.record(tenant="bench", app="marketing", name="marketing", version="1",
                                manifest=manifest_json(parsed), manifest_hash=installed_hash(manifest_json(parsed), "UTC"))
        config = HeartbeatConfig(tenant="bench", app="marketing", agent="cmo", heartbeat=parsed.agents[0].heartbeats[0])
        async with time_skipping_env() as env, running_worker(env.client, store):
            await env.client.start_workflow(HeartbeatWorkflow.run, HeartbeatInput(config=config),
                                            id=config.workflow_id, task_queue=TASK_QUEUE)
            await env.sleep(timedelta(minutes=5 * ticks + 1))
            rows = list(reversed(await store.spend.calls(tenant="bench", workflow_id=config.workflow_id,
                                                         limit=ticks * 2)))
        await store.close()
    per_tick = [{"tokens_in": r["tokens_in"], "cached": r["cache_read_tokens"],
                 "usd": float(usd(r["nano_usd"] or 0))} for r in rows][:ticks]

    def mean(part: list[dict], key: str) -> float:
        return statistics.fmean(p[key] for p in part) if part else 0.0

    early, middle, late = per_tick[1:10], per_tick[len(per_tick) // 2 - 5:len(per_tick) // 2 + 5], per_tick[-10:]
    return {"cached": cached, "ticks": len(per_tick), "tick_1": per_tick[0] if per_tick else None,
            "ticks_2_10": {key: round(mean(early, key), 6) for key in ("tokens_in", "cached", "usd")},
            "middle_10": {key: round(mean(middle, key), 6) for key in ("tokens_in", "cached", "usd")},
            "last_10": {key: round(mean(late, key), 6) for key in ("tokens_in", "cached", "usd")},
            "growth_last_vs_early": round(mean(late, "tokens_in") / mean(early, "tokens_in"), 3) if early else None,
            # Once the history window is full, a tick's input is flat: the second half does not grow.
            "growth_last_vs_middle": round(mean(late, "tokens_in") / mean(middle, "tokens_in"), 3) if middle else None,
            "usd_total": round(sum(p["usd"] for p in per_tick), 6)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=100)
    args = parser.parse_args()
    results = [await run(args.ticks, cached=True), await run(args.ticks, cached=False)]
    for result in results:
        label = "with prompt caching" if result["cached"] else "without caching    "
        early, late = result["ticks_2_10"], result["last_10"]
        print(f"{label}  tick 1: {result['tick_1']['tokens_in']} in, ${result['tick_1']['usd']:.5f} | ticks 2-10:"
              f" {early['tokens_in']:.0f} in ({early['cached']:.0f} cached), ${early['usd']:.5f} | last 10:"
              f" {late['tokens_in']:.0f} in ({late['cached']:.0f} cached), ${late['usd']:.5f} | growth"
              f" x{result['growth_last_vs_early']} from ticks 2-10, x{result['growth_last_vs_middle']} from the middle"
              f" 10 | total ${result['usd_total']:.4f} over {result['ticks']} ticks")
    out = REPO / "bench" / "results" / "cost_per_tick.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    asyncio.run(main())

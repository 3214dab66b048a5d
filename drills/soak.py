"""Soak: many heartbeats on a real dev server and worker subprocess for a stretch of wall time.

    python -m drills.soak                           # 1,000 heartbeats, 10 minutes (make soak)
    python -m drills.soak --heartbeats 50 --minutes 6

Heartbeats run at the shortest interval the manifest allows (5 minutes), spread over tenants `soak0..`
(each tenant's salt shifts its grid); a third find records (the offline agent wakes and replies), the rest
find nothing (the no-op tick). At the end it reports, for the due times inside the window (ending one
minute before the stop, so late-but-fine ticks count): ticks due, ticks run (a receipt at that due
time), failures, duplicates (two receipts for one due time), ticks run that were not due, and the largest workflow history. Exit 1 unless failures, duplicates and missed ticks are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from client.checks import LoadedManifest
from client.sync import install_manifests
from contract.names import heartbeat_workflow_id
from drills.rig import Rig
from manifest.loader import parse_manifest
from schedule import upcoming_fires

PER_TENANT = 100
GRACE = timedelta(minutes=1)


def manifest_text(count: int) -> str:
    lines = ["id: soak", "agents:", "  - id: bot", "    heartbeats:"]
    for index in range(count):
        record_type = "kpi" if index % 3 == 0 else "none"
        lines += [f"      - slug: hb{index:03d}", "        skill: _internal_app_records", "        tool: query",
                  f"        params: {{record_type: {record_type}}}", "        interval_minutes: 5"]
    return "\n".join(lines) + "\n"


async def soak(folder: Path, *, heartbeats: int, minutes: float) -> int:
    rig = Rig(folder)
    await rig.start()
    try:
        assert rig.client is not None and rig.store is not None
        tenants = [f"soak{i}" for i in range((heartbeats + PER_TENANT - 1) // PER_TENANT)]
        specs: dict[str, tuple[str, object]] = {}
        started = datetime.now(UTC)
        for number, tenant in enumerate(tenants):
            count = min(PER_TENANT, heartbeats - number * PER_TENANT)
            manifest = parse_manifest(manifest_text(count))
            await rig.store.tenants.upsert(tenant=tenant, timezone="UTC", provider="offline")
            await rig.store.records.put(tenant=tenant, app="soak", record_type="kpi", record_id="signups",
                                       data={"metric": "signups", "value": 182})
            await install_manifests(rig.client, rig.store, [LoadedManifest(Path(f"{tenant}.yaml"), manifest)],
                                    tenant=tenant)
            for spec in manifest.agents[0].heartbeats:
                specs[heartbeat_workflow_id(tenant, "soak", "bot", spec.slug)] = (tenant, spec)
        print(f"installed {len(specs)} heartbeats for {len(tenants)} tenants; soaking {minutes:g} min", flush=True)
        end = started + timedelta(minutes=minutes)
        while datetime.now(UTC) < end:
            await asyncio.sleep(min(30.0, max(0.0, (end - datetime.now(UTC)).total_seconds())))
            print(f"  {datetime.now(UTC):%H:%M:%S} ...", flush=True)
        window_end = end - GRACE
        due = run = failures = duplicates = extra = 0
        largest = (0, "")
        for heartbeat, (tenant, spec) in specs.items():
            fires = [f for f in upcoming_fires(spec, tenant_id=tenant, after=started, count=1000) if f <= window_end]
            receipts = [r for r in await rig.store.receipts.list(tenant=tenant, heartbeat_id=heartbeat, limit=1000)
                        if r.trigger == "schedule"]
            at = Counter(r.at for r in receipts)
            due += len(fires)
            run += sum(1 for f in fires if at[f])
            duplicates += sum(n - 1 for n in at.values() if n > 1)
            extra += sum(1 for t in at if t not in fires and t <= window_end)
            failures += sum(1 for r in receipts if r.outcome == "failed")
            history = await rig.client.get_workflow_handle(heartbeat).fetch_history()
            largest = max(largest, (len(history.events), heartbeat))
        print(f"ticks due {due}  ticks run {run}  failures {failures}  duplicates {duplicates}  "
              f"not due but run {extra}  largest history {largest[0]} events ({largest[1]})")
        ok = due > 0 and run == due and failures == 0 and duplicates == 0 and extra == 0
        print("soak passed" if ok else "soak FAILED")
        return 0 if ok else 1
    finally:
        await rig.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drills.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeats", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        started = time.monotonic()
        code = asyncio.run(soak(Path(folder), heartbeats=args.heartbeats, minutes=args.minutes))
        print(f"wall time {time.monotonic() - started:.0f}s")
    sys.exit(code)


if __name__ == "__main__":
    main()

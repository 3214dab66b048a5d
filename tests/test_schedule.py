"""The schedule semantics, pinned as one table of aware datetimes.

Every expected time was worked out by hand from the rules, not read back from the code:
the salt of tenant "demo" is sha256("demo")[:8] % 600 = 596 s (% 300 = 296 s), of "acme" 72 s.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from manifest.models import HeartbeatSpec
from schedule import next_fire, tenant_salt, upcoming_fires

BASE = {"slug": "h", "skill": "_internal_app_records", "tool": "query", "params": {"record_type": "x"}}


def heartbeat(**fields) -> HeartbeatSpec:
    return HeartbeatSpec.model_validate({**BASE, **fields})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


CASES = [
    # (id, heartbeat fields, tenant, tenant timezone, after, expected fires)
    ("interval-60-salted", dict(interval_minutes=60), "demo", "UTC", "2026-11-22T00:00:00Z",
     ["2026-11-22T00:09:56Z", "2026-11-22T01:09:56Z", "2026-11-22T02:09:56Z"]),
    ("interval-strictly-after", dict(interval_minutes=60), "demo", "UTC", "2026-11-22T00:09:56Z",
     ["2026-11-22T01:09:56Z", "2026-11-22T02:09:56Z"]),
    ("interval-5-salt-mod-300", dict(interval_minutes=5), "demo", "UTC", "2026-11-22T00:00:00Z",
     ["2026-11-22T00:04:56Z", "2026-11-22T00:09:56Z", "2026-11-22T00:14:56Z"]),
    ("interval-other-tenant-other-phase", dict(interval_minutes=60), "acme", "UTC", "2026-11-22T00:00:00Z",
     ["2026-11-22T00:01:12Z", "2026-11-22T01:01:12Z"]),
    ("interval-43200-max", dict(interval_minutes=43200), "demo", "UTC", "2026-11-22T00:00:00Z",
     ["2026-12-03T00:09:56Z", "2027-01-02T00:09:56Z"]),
    ("daily-tenant-zone-berlin", dict(schedule_type="daily", time_of_day="09:00"), "demo", "Europe/Berlin",
     "2026-11-22T00:00:00Z", ["2026-11-22T08:00:00Z", "2026-11-23T08:00:00Z"]),
    ("daily-half-hour-zone-kolkata", dict(schedule_type="daily", time_of_day="09:00"), "demo", "Asia/Kolkata",
     "2026-11-22T00:00:00Z", ["2026-11-22T03:30:00Z", "2026-11-23T03:30:00Z"]),
    # Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 fires at 03:30 CEST.
    ("berlin-spring-gap", dict(schedule_type="daily", time_of_day="02:30"), "demo", "Europe/Berlin",
     "2026-03-28T00:00:00Z", ["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"]),
    # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice, fires at the first.
    ("berlin-autumn-first-occurrence", dict(schedule_type="daily", time_of_day="02:30"), "demo", "Europe/Berlin",
     "2026-10-24T12:00:00Z", ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
    ("berlin-autumn-cron-once", dict(cron_expression="*/30 2 * * *", schedule_type="cron"), "demo",
     "Europe/Berlin", "2026-10-24T23:00:00Z",
     ["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z"]),
    # In the gap 02:00 -> 03:00, 02:30 lands on 03:30 while 03:00 is real: out of wall order.
    ("berlin-spring-cron-reordered", dict(cron_expression="0,30 2,3 * * *", schedule_type="cron"), "demo",
     "Europe/Berlin", "2026-03-29T00:00:00Z",
     ["2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"]),
    # New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT; falls back 2026-11-01 02:00 EDT -> 01:00 EST.
    ("new-york-spring-gap", dict(schedule_type="daily", time_of_day="02:30"), "demo", "America/New_York",
     "2026-03-07T00:00:00Z", ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"]),
    ("new-york-autumn-first-occurrence", dict(schedule_type="daily", time_of_day="01:30"), "demo",
     "America/New_York", "2026-10-31T12:00:00Z", ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
    ("cron-weekdays-new-york", dict(cron="*/15 9-10 * * 1-5"), "demo", "America/New_York",
     "2026-11-20T15:50:00Z", ["2026-11-23T14:00:00Z", "2026-11-23T14:15:00Z"]),
    # 2026-11-22 is a Sunday. Monday is 0, Sunday is 6 (not cron's numbering).
    ("weekly-monday-is-0", dict(schedule_type="weekly", time_of_day="09:00", day_of_week=0), "demo", "UTC",
     "2026-11-22T00:00:00Z", ["2026-11-23T09:00:00Z", "2026-11-30T09:00:00Z"]),
    ("weekly-sunday-is-6", dict(schedule_type="weekly", time_of_day="09:00", day_of_week=6), "demo", "UTC",
     "2026-11-22T00:00:00Z", ["2026-11-22T09:00:00Z", "2026-11-29T09:00:00Z"]),
    ("active-hours-cross-midnight", dict(interval_minutes=60, active_hours={"start": "22:00", "end": "02:00"}),
     "demo", "UTC", "2026-11-22T12:00:00Z",
     ["2026-11-22T22:09:56Z", "2026-11-22T23:09:56Z", "2026-11-23T00:09:56Z", "2026-11-23T01:09:56Z",
      "2026-11-23T22:09:56Z"]),
    ("active-hours-end-24", dict(interval_minutes=60, active_hours={"start": "22:00", "end": "24:00"}),
     "demo", "UTC", "2026-11-22T12:00:00Z",
     ["2026-11-22T22:09:56Z", "2026-11-22T23:09:56Z", "2026-11-23T22:09:56Z"]),
    ("active-hours-start-inclusive", dict(schedule_type="daily", time_of_day="08:00",
                                          active_hours={"start": "08:00", "end": "09:00"}),
     "demo", "UTC", "2026-11-22T00:00:00Z", ["2026-11-22T08:00:00Z"]),
    # Newfoundland is UTC-03:30 in November: grid xx:09:56 UTC is local xx:39:56.
    ("active-hours-half-hour-zone", dict(interval_minutes=60, active_hours={
        "start": "09:00", "end": "10:00", "timezone": "America/St_Johns"}), "demo", "UTC",
     "2026-11-22T00:00:00Z", ["2026-11-22T13:09:56Z", "2026-11-23T13:09:56Z"]),
    # The window's zone wins over the tenant's; it follows DST (CET -> CEST on 2026-03-29).
    ("active-hours-own-zone-dst", dict(interval_minutes=60, active_hours={
        "start": "09:00", "end": "10:00", "timezone": "Europe/Berlin"}), "demo", "Asia/Tokyo",
     "2026-03-28T00:00:00Z", ["2026-03-28T08:09:56Z", "2026-03-29T07:09:56Z", "2026-03-30T07:09:56Z"]),
    ("active-hours-user-means-tenant", dict(interval_minutes=60, active_hours="09:00-10:00"), "demo",
     "Asia/Kolkata", "2026-11-22T00:00:00Z", ["2026-11-22T04:09:56Z", "2026-11-23T04:09:56Z"]),
    ("business-overnight", dict(interval_minutes={"business_hours": 15, "overnight": 120},
                                business_hours={"start": "09:00", "end": "17:00", "timezone": "UTC"}),
     "demo", "Europe/Berlin", "2026-11-22T16:30:00Z",
     ["2026-11-22T16:39:56Z", "2026-11-22T16:54:56Z", "2026-11-22T18:09:56Z", "2026-11-22T20:09:56Z"]),
    ("business-opens", dict(interval_minutes={"business_hours": 15, "overnight": 120},
                            business_hours={"start": "09:00", "end": "17:00", "timezone": "UTC"}),
     "demo", "UTC", "2026-11-22T06:30:00Z",
     ["2026-11-22T08:09:56Z", "2026-11-22T09:09:56Z", "2026-11-22T09:24:56Z"]),
    # Cooldown 12 min on a 5-min grid: a fire, then the next grid point >= 12 min later.
    ("cooldown-skips-grid-points", dict(interval_minutes=5, cooldown_seconds=720), "demo", "UTC",
     "2026-11-22T00:00:00Z", ["2026-11-22T00:04:56Z", "2026-11-22T00:19:56Z", "2026-11-22T00:34:56Z"]),
    ("cooldown-minutes-shorthand", dict(interval_minutes=5, cooldown_minutes=10), "demo", "UTC",
     "2026-11-22T00:00:00Z", ["2026-11-22T00:04:56Z", "2026-11-22T00:14:56Z"]),
    # A daily grid point at 00:09:56 UTC is never inside 12:00-13:00 for this tenant.
    ("never-inside-window", dict(interval_minutes=1440, active_hours={
        "start": "12:00", "end": "13:00", "timezone": "UTC"}), "demo", "UTC", "2026-11-22T00:00:00Z", []),
]


@pytest.mark.parametrize(
    ("fields", "tenant", "tenant_timezone", "after", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_fires(fields, tenant, tenant_timezone, after, expected):
    fires = upcoming_fires(
        heartbeat(**fields),
        tenant_id=tenant,
        tenant_timezone=tenant_timezone,
        after=utc(after),
        count=max(len(expected), 1),
    )
    assert [f.strftime("%Y-%m-%dT%H:%M:%SZ") for f in fires] == expected
    assert all(f.tzinfo is not None and f.utcoffset() == timedelta(0) for f in fires)


def test_cooldown_counts_from_the_last_run_not_the_grid():
    spec = heartbeat(interval_minutes=5, cooldown_seconds=600)
    # A run-now at 00:07 pushes the next scheduled fire to the first grid point >= 00:17.
    due = next_fire(spec, tenant_id="demo", after=utc("2026-11-22T00:07:00Z"), last_run=utc("2026-11-22T00:07:00Z"))
    assert due == utc("2026-11-22T00:19:56Z")
    # A grid point exactly cooldown after the last run is not "closer than" it: it fires.
    due = next_fire(spec, tenant_id="demo", after=utc("2026-11-22T00:05:00Z"), last_run=utc("2026-11-22T00:04:56Z"))
    assert due == utc("2026-11-22T00:14:56Z")


def test_cooldown_beyond_30_days_is_treated_as_30_days():
    # Validation refuses such a cooldown; a spec built without validation must still not overflow.
    spec = heartbeat(interval_minutes=60).model_copy(update={"cooldown_seconds": 10**14})
    last_run = utc("2026-11-22T00:09:56Z")
    due = next_fire(spec, tenant_id="demo", after=last_run, last_run=last_run)
    assert due == last_run + timedelta(days=30)
    assert upcoming_fires(spec, tenant_id="demo", after=utc("2026-11-22T00:00:00Z"), count=2) == [
        last_run, last_run + timedelta(days=30)]


def test_fractional_after_is_strict():
    spec = heartbeat(interval_minutes=60)
    assert next_fire(spec, tenant_id="demo", after=utc("2026-11-22T00:09:55.999Z")) == utc("2026-11-22T00:09:56Z")
    assert next_fire(spec, tenant_id="demo", after=utc("2026-11-22T00:09:56.001Z")) == utc("2026-11-22T01:09:56Z")


def test_naive_after_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(heartbeat(interval_minutes=60), tenant_id="demo", after=datetime(2026, 1, 1))


@pytest.mark.parametrize("tenant", ["demo", "acme", "tenant-with-a-long-name_42"])
@pytest.mark.parametrize("minutes", [5, 7, 10, 60, 43200])
def test_salt_is_the_documented_formula(tenant, minutes):
    digest = hashlib.sha256(tenant.encode()).digest()
    assert tenant_salt(tenant, minutes) == int.from_bytes(digest[:8], "big") % (min(minutes, 10) * 60)
    assert 0 <= tenant_salt(tenant, minutes) < min(minutes, 10) * 60


def test_salt_is_stable_across_processes():
    code = "from schedule import tenant_salt; print(tenant_salt('demo', 60), tenant_salt('acme', 7))"
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outputs == {"596 72\n"}


def test_salts_spread_tenants():
    salts = {tenant_salt(f"tenant{i}", 60) for i in range(200)}
    assert len(salts) > 150  # 200 tenants over 600 phases: no thundering herd at xx:00:00

"""When a runtime task runs: one-shots (`in`, `at`) and recurring (`cron`, `every`) in the tenant's zone.

    timing = job_timing(in_="2h", now=now, tenant_timezone="Europe/Berlin")       # once, at now + 2h
    timing = job_timing(every="3d", now=now, tenant_timezone="Europe/Berlin")      # recurring
    next_job_fire(timing, after=now, tenant_timezone="Europe/Berlin")              # the next due time

Rules:
- `in`: a duration `N` + unit (`m`, `h`, `d`, `w`): `90m`, `2h`, `3d`, `1w`; runs once at now + N.
- `at`: an ISO 8601 instant; without an offset it is wall time in the tenant's zone (the
  platform's DST rules: a time in a spring-forward gap moves forward by the gap, a repeated time
  is its first occurrence). An `at` up to AT_GRACE in the past runs at once (a clock a little
  behind); further in the past it is refused: a one-shot that missed its moment is a mistake to
  surface, not to run late silently.
- `cron`: 5 fields, local wall time in the tenant's zone (as for heartbeats).
- `every`: the first run is one period after creation. Whole days or weeks step on the **local
  calendar** from the moment of creation (every `3d` created at 09:00 stays at 09:00 local across a
  DST change); shorter intervals (`m`, `h`) step in absolute time.

Pure: no I/O, no Temporal imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from croniter import croniter

from schedule.fires import cron_in_zone
from schedule.local_time import local_wall, wall_to_utc, zone

MIN_EVERY = timedelta(minutes=5)  # a recurring runtime task runs at most every 5 minutes
MAX_DELAY = timedelta(days=366)  # how far ahead a one-shot may be, and the longest `every`
AT_GRACE = timedelta(minutes=1)
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}

Kind = Literal["once", "cron", "every"]


class TimingError(ValueError):
    """A timing that cannot be: the message names the argument (`in`, `at`, `cron`, `every`)."""


@dataclass(frozen=True)
class JobTiming:
    """A runtime task's timing, resolved at creation: enough to compute every due time."""

    kind: Kind
    at: datetime | None = None  # once: the instant (UTC)
    cron: str | None = None  # cron: local wall time in the tenant's zone
    every_seconds: int | None = None  # every: the period
    anchor: datetime | None = None  # every: the moment of creation (UTC), the grid's origin

    def describe(self) -> str:
        if self.kind == "once":
            return f"once at {self.at:%Y-%m-%dT%H:%M:%SZ}" if self.at else "once"
        if self.kind == "cron":
            return f"cron {self.cron}"
        seconds = self.every_seconds or 0
        for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
            if seconds % size == 0:
                return f"every {seconds // size}{unit}"
        return f"every {seconds}s"


def parse_duration(text: str, what: str) -> timedelta:
    """`90m`, `2h`, `3d`, `1w` as a timedelta; TimingError naming `what` otherwise."""
    found = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise TimingError(f"{what}: expected a whole number and a unit m, h, d or w, such as 30m, 2h or 3d"
                          f" (got {text!r})")
    return int(found.group(1)) * _UNITS[found.group(2)]


def job_timing(*, now: datetime, tenant_timezone: str, in_: str | None = None, at: str | None = None,
               cron: str | None = None, every: str | None = None) -> JobTiming:
    """Exactly one of `in_`, `at` (one-shot), `cron`, `every` (recurring), resolved against `now`."""
    given = {name: value for name, value in (("in", in_), ("at", at), ("cron", cron), ("every", every))
             if value is not None}
    if len(given) != 1:
        named = ", ".join(given) or "none"
        raise TimingError(f"give exactly one of in, at (one-shot), cron or every (recurring); got {named}")
    now = now.astimezone(UTC).replace(microsecond=0)
    if in_ is not None:
        delay = parse_duration(in_, "in")
        if delay > MAX_DELAY:
            raise TimingError(f"in: at most {MAX_DELAY.days} days ahead (got {in_})")
        return JobTiming(kind="once", at=now + delay)
    if at is not None:
        when = _instant(at, tenant_timezone)
        if when < now - AT_GRACE:
            raise TimingError(f"at: {at} is in the past (now {now:%Y-%m-%dT%H:%M:%SZ}); give a future time, or in: for"
                              " a delay")
        if when > now + MAX_DELAY:
            raise TimingError(f"at: at most {MAX_DELAY.days} days ahead (got {at})")
        return JobTiming(kind="once", at=max(when, now))
    if cron is not None:
        expression = " ".join(cron.split())
        if len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise TimingError(f"cron: expected 5 fields such as \"0 9 * * 1-5\" (got {cron!r})")
        timing = JobTiming(kind="cron", cron=expression)
        first = next_job_fire(timing, after=now, tenant_timezone=tenant_timezone)
        if first is None:
            raise TimingError(f"cron: {cron!r} never fires")
        return timing
    assert every is not None
    period = parse_duration(every, "every")
    if period < MIN_EVERY or period > MAX_DELAY:
        raise TimingError(f"every: between {int(MIN_EVERY.total_seconds() // 60)}m and {MAX_DELAY.days}d"
                          f" (got {every})")
    return JobTiming(kind="every", every_seconds=int(period.total_seconds()), anchor=now)


def next_job_fire(timing: JobTiming, *, after: datetime, tenant_timezone: str) -> datetime | None:
    """The first due time strictly after `after`; None when there is none (a one-shot's time passed)."""
    after = after.astimezone(UTC)
    if timing.kind == "once":
        assert timing.at is not None
        return timing.at if timing.at > after else None
    if timing.kind == "cron":
        assert timing.cron is not None
        return cron_in_zone(timing.cron, zone(tenant_timezone))(after.replace(microsecond=0) + timedelta(seconds=1))
    assert timing.every_seconds is not None and timing.anchor is not None
    period, anchor = timing.every_seconds, timing.anchor
    if period % 86_400:  # minutes and hours: absolute steps from the anchor
        steps = max(1, int((after - anchor).total_seconds() // period) + 1)  # the first, a period after creation
        return anchor + timedelta(seconds=steps * period)
    # Whole days: the anchor's local wall time, every `days` local calendar days.
    tz, days = zone(tenant_timezone), period // 86_400
    origin = local_wall(anchor, tz)
    steps = max(1, int((local_wall(after, tz) - origin).days // days))
    while True:
        candidate = wall_to_utc(origin + timedelta(days=steps * days), tz)
        if candidate > after:
            # A DST shift can put the previous step past `after` too: take the earliest.
            previous = wall_to_utc(origin + timedelta(days=(steps - 1) * days), tz)
            return previous if steps > 1 and previous > after else candidate
        steps += 1


def _instant(text: str, tenant_timezone: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise TimingError(f"at: expected an ISO 8601 time such as 2026-12-24T09:00:00+01:00 (got {text!r})") from None
    if parsed.tzinfo is None:
        return wall_to_utc(parsed.replace(microsecond=0), zone(tenant_timezone))
    return parsed.astimezone(UTC).replace(microsecond=0)

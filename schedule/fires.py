"""When a heartbeat is due: the exact schedule semantics (docs/manifest.md, "Schedule semantics") as pure functions.

A heartbeat's due times come from one or two *sources* of candidate instants (a salted interval
grid, or a cron expression read as local wall time; daily and weekly are cron expressions too).
Each source carries the windows its candidates must fall in (active hours; the business window of
a split interval). `next_fire` walks candidates forward, jumping straight to the next window
opening or cooldown end instead of stepping through every candidate, so even a 5-minute grid
with a narrow window costs a few steps per day searched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from manifest.models import MAX_COOLDOWN_SECONDS, USER_TIMEZONE, SplitInterval, Window
from schedule.local_time import (
    DailyWindow,
    local_wall,
    next_entry,
    utc_offset,
    wall_to_utc,
    zone,
)


class Schedule(Protocol):
    """What the schedule maths reads: a heartbeat (manifest.models.HeartbeatSpec), or a task's time
    trigger with the task's window and cooldown (manifest.tasks.TimeSchedule)."""

    @property
    def schedule_type(self) -> str: ...
    @property
    def interval_minutes(self) -> int | SplitInterval | None: ...
    @property
    def business_hours(self) -> Window | None: ...
    @property
    def active_hours(self) -> Window | None: ...
    @property
    def cooldown_seconds(self) -> int: ...
    def calendar_cron(self) -> str: ...


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# No schedule that validates needs longer than this between fires (a cron on 29 February
# waits up to 8 years across 2100); past it the heartbeat is reported as never firing.
HORIZON = timedelta(days=8 * 366 + 1)
MAX_STEPS = 200_000
MAX_DST_SHIFT = timedelta(hours=3)  # larger than any real zone's offset change


def tenant_salt(tenant_id: str, interval_minutes: int) -> int:
    """Seconds by which a tenant's interval grid is shifted: stable across processes and hosts."""
    digest = hashlib.sha256(tenant_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % (min(interval_minutes, 10) * 60)


def heartbeat_zone(heartbeat: Schedule, tenant_timezone: str) -> str:
    """The zone a heartbeat's times are computed in: active_hours.timezone, else the tenant's."""
    return _zone_name(heartbeat.active_hours, tenant_timezone)


def _zone_name(window: Window | None, tenant_timezone: str) -> str:
    if window is not None and window.timezone != USER_TIMEZONE:
        return window.timezone
    return tenant_timezone or "UTC"


def cooldown(heartbeat: Schedule) -> timedelta:
    """The heartbeat's cooldown, never longer than the 30 days validation allows: a spec built
    without validation must not overflow `timedelta` and fail every computation that uses it."""
    return timedelta(seconds=min(heartbeat.cooldown_seconds, MAX_COOLDOWN_SECONDS))


def daily_window(window: Window) -> DailyWindow:
    return DailyWindow(window.start_seconds, window.end_seconds)


# --- candidate sources -------------------------------------------------------------------------

NextCandidate = Callable[[datetime], datetime | None]  # earliest candidate at or after an instant


def interval_grid(tenant_id: str, minutes: int) -> NextCandidate:
    """Due times on the UTC grid epoch + salt + k * interval."""
    period = minutes * 60
    salt = tenant_salt(tenant_id, minutes)

    def at_or_after(instant: datetime) -> datetime:
        seconds = int((instant - EPOCH).total_seconds())
        steps = -((salt - seconds) // period)  # ceil((seconds - salt) / period)
        return EPOCH + timedelta(seconds=salt + steps * period)

    return at_or_after


def cron_in_zone(expression: str, tz: ZoneInfo) -> NextCandidate:
    """Due times of a 5-field cron expression read as local wall time in `tz`."""

    def walls_from(wall: datetime) -> Iterator[datetime]:
        runner = croniter(expression, wall - timedelta(seconds=1))
        while True:
            yield runner.get_next(datetime)

    def at_or_after(instant: datetime) -> datetime | None:
        wall = local_wall(instant, tz)
        if utc_offset(instant - MAX_DST_SHIFT, tz) == utc_offset(instant + 2 * MAX_DST_SHIFT, tz):
            # No transition nearby: wall time and instant move together.
            for candidate_wall in walls_from(wall):
                candidate = wall_to_utc(candidate_wall, tz)
                if candidate >= instant:
                    return candidate
        # Near a transition wall times map to instants out of order (02:30 in a gap lands after
        # 03:00), so scan a span around `instant` and keep the earliest instant not before it.
        best: datetime | None = None
        best_wall: datetime | None = None
        for candidate_wall in walls_from(wall - MAX_DST_SHIFT):
            if best_wall is not None and candidate_wall > best_wall + MAX_DST_SHIFT:
                break
            candidate = wall_to_utc(candidate_wall, tz)
            if candidate >= instant and (best is None or candidate < best):
                best, best_wall = candidate, candidate_wall
        return best

    return at_or_after


@dataclass(frozen=True)
class Source:
    """Candidate due times and the local windows they must fall in."""

    next_candidate: NextCandidate
    windows: tuple[tuple[DailyWindow, ZoneInfo], ...]


def sources(heartbeat: Schedule, *, tenant_id: str, tenant_timezone: str = "UTC") -> list[Source]:
    tz = zone(heartbeat_zone(heartbeat, tenant_timezone))
    active: tuple[tuple[DailyWindow, ZoneInfo], ...] = ()
    if heartbeat.active_hours is not None:
        active = ((daily_window(heartbeat.active_hours), tz),)
    interval = heartbeat.interval_minutes
    if heartbeat.schedule_type != "interval":
        return [Source(cron_in_zone(heartbeat.calendar_cron(), tz), active)]
    if isinstance(interval, SplitInterval):
        # Inside the business window the business grid applies, outside it the overnight grid.
        assert heartbeat.business_hours is not None
        business = daily_window(heartbeat.business_hours)
        business_tz = zone(_zone_name(heartbeat.business_hours, tenant_timezone))
        return [
            Source(interval_grid(tenant_id, interval.business_hours), ((business, business_tz), *active)),
            Source(interval_grid(tenant_id, interval.overnight), ((business.complement(), business_tz), *active)),
        ]
    assert isinstance(interval, int)
    return [Source(interval_grid(tenant_id, interval), active)]


# --- next due time -----------------------------------------------------------------------------


def _first_due(source: Source, lower: datetime, horizon: datetime) -> datetime | None:
    """The earliest candidate of `source` at or after `lower` that lies inside all its windows."""
    instant = lower
    for _ in range(MAX_STEPS):
        candidate = source.next_candidate(instant)
        if candidate is None or candidate > horizon:
            return None
        entry = candidate
        for window, tz in source.windows:
            entry = next_entry(entry, window, tz)
            if entry is None:
                return None
        if entry == candidate:
            return candidate
        instant = entry  # nothing valid before the windows open again
    raise RuntimeError("schedule search did not converge")  # a bug, not a user error


def next_fire(
    heartbeat: Schedule,
    *,
    tenant_id: str,
    after: datetime,
    tenant_timezone: str = "UTC",
    last_run: datetime | None = None,
) -> datetime | None:
    """The first due time strictly after `after` (aware), honouring active hours and cooldown.

    A due time closer than the cooldown to `last_run` is skipped. None: it never fires again
    (no due time inside its windows within the search horizon).
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    lower = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    if last_run is not None and heartbeat.cooldown_seconds:
        lower = max(lower, last_run.astimezone(UTC) + cooldown(heartbeat))
    horizon = lower + HORIZON
    found = [
        due
        for source in sources(heartbeat, tenant_id=tenant_id, tenant_timezone=tenant_timezone)
        if (due := _first_due(source, lower, horizon)) is not None
    ]
    return min(found, default=None)


def upcoming_fires(
    heartbeat: Schedule,
    *,
    tenant_id: str,
    after: datetime,
    count: int,
    tenant_timezone: str = "UTC",
) -> list[datetime]:
    """The next `count` fires after `after`, assuming every one of them runs (for cooldown)."""
    fires: list[datetime] = []
    cursor, last_run = after, None
    while len(fires) < count:
        due = next_fire(
            heartbeat, tenant_id=tenant_id, after=cursor, tenant_timezone=tenant_timezone, last_run=last_run
        )
        if due is None:
            break
        fires.append(due)
        cursor = last_run = due
    return fires

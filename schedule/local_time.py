"""Wall-clock time in a zone, with the platform's DST rules, and daily windows over it.

All instants here are timezone-aware UTC datetimes with whole seconds. Pure: no I/O beyond the
IANA database that `zoneinfo` reads (shipped by the tzdata package), no Temporal imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 86_400


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (cached: zone objects are immutable and costly to build)."""
    return ZoneInfo(name)


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a naive local wall time names in `tz`.

    fold=0 gives exactly the platform's DST rules: a time inside a spring-forward gap takes the offset
    from before the gap, so 02:30 in a 02:00-03:00 gap lands at 03:30; a time that occurs twice
    (autumn) resolves to its first occurrence.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def local_wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock reading in `tz` at `instant`."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def second_of_day(instant: datetime, tz: ZoneInfo) -> int:
    local = instant.astimezone(tz)
    return local.hour * 3600 + local.minute * 60 + local.second


def utc_offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def first_offset_change(start: datetime, end: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in (start, end] whose UTC offset differs from start's.

    Requires utc_offset(start) != utc_offset(end); real zones change offset at most once in the
    spans we search (under a day), so bisection finds the transition.
    """
    before = utc_offset(start, tz)
    low, high = int(start.timestamp()), int(end.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if utc_offset(datetime.fromtimestamp(middle, UTC), tz) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True)
class DailyWindow:
    """Local times of day [start, end) in seconds; wraps midnight when end < start."""

    start: int
    end: int  # may be 86400 ("24:00")

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def contains(self, second: int) -> bool:
        if self.start < self.end:
            return self.start <= second < self.end
        if self.start > self.end:
            return second >= self.start or second < self.end
        return False

    def complement(self) -> DailyWindow:
        """The local times outside this window, as a window of its own."""
        if self.start == 0 and self.end == SECONDS_PER_DAY:
            return DailyWindow(0, 0)
        if self.is_empty:
            return DailyWindow(0, SECONDS_PER_DAY)
        return DailyWindow(self.end % SECONDS_PER_DAY, self.start)


def next_entry(instant: datetime, window: DailyWindow, tz: ZoneInfo) -> datetime | None:
    """The earliest instant at or after `instant` whose local time lies inside `window`.

    May return an earlier point than the true entry (a DST transition on the way); callers loop,
    re-checking from the returned instant, which always moves forward. None: the window is empty.
    """
    if window.is_empty:
        return None
    current = second_of_day(instant, tz)
    if window.contains(current):
        return instant
    # With a constant offset the local clock reaches `start` after this many seconds.
    reach = instant + timedelta(seconds=(window.start - current) % SECONDS_PER_DAY)
    if utc_offset(reach, tz) != utc_offset(instant, tz):
        return first_offset_change(instant, reach, tz)
    return reach

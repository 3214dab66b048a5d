"""Runtime task timing (schedule/job_times.py) against hand-computed instants.

Europe/Berlin: CET (UTC+1) until 2026-03-29 02:00 local, then CEST (UTC+2). 09:00 local is 08:00Z
before the change and 07:00Z after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schedule.job_times import JobTiming, TimingError, job_timing, next_job_fire, parse_duration

BERLIN = "Europe/Berlin"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def fires(timing: JobTiming, after: datetime, count: int, zone: str = BERLIN) -> list[str]:
    found, cursor = [], after
    while len(found) < count:
        due = next_job_fire(timing, after=cursor, tenant_timezone=zone)
        if due is None:
            break
        found.append(due.strftime("%Y-%m-%dT%H:%MZ"))
        cursor = due
    return found


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("3d", timedelta(days=3)), ("1w", timedelta(weeks=1)),
    (" 90m ", timedelta(minutes=90)),
])
def test_durations(text, expected):
    assert parse_duration(text, "in") == expected


@pytest.mark.parametrize("text", ["", "2", "h", "0h", "2x", "1.5h", "-2h", "2 h", "2H", "1234567m"])
def test_bad_durations_name_the_argument(text):
    with pytest.raises(TimingError, match="^every: expected a whole number"):
        parse_duration(text, "every")


def test_every_three_days_keeps_the_local_time_across_the_dst_change():
    created = utc("2026-03-20T08:00:00Z")  # 09:00 CET
    timing = job_timing(every="3d", now=created, tenant_timezone=BERLIN)
    assert fires(timing, created, 5) == [
        "2026-03-23T08:00Z", "2026-03-26T08:00Z",  # 09:00 CET
        "2026-03-29T07:00Z", "2026-04-01T07:00Z", "2026-04-04T07:00Z",  # 09:00 CEST
    ]
    assert next_job_fire(timing, after=created - timedelta(seconds=1), tenant_timezone=BERLIN) == utc(
        "2026-03-23T08:00:00Z")
    # Asked in the middle of the grid (after a restart), the next point is the same.
    assert next_job_fire(timing, after=utc("2026-03-27T12:00:00Z"), tenant_timezone=BERLIN) == utc("2026-03-29T07:00:00Z")


def test_every_hours_step_in_absolute_time():
    created = utc("2026-03-28T23:30:00Z")
    timing = job_timing(every="2h", now=created, tenant_timezone=BERLIN)
    assert fires(timing, created, 3) == ["2026-03-29T01:30Z", "2026-03-29T03:30Z", "2026-03-29T05:30Z"]
    # Asked from just before creation (the workflow's first question), the first run is still a period later.
    assert next_job_fire(timing, after=created - timedelta(seconds=1), tenant_timezone=BERLIN) == utc(
        "2026-03-29T01:30:00Z")


def test_cron_is_local_wall_time():
    timing = job_timing(cron="0 9 * * *", now=utc("2026-03-27T12:00:00Z"), tenant_timezone=BERLIN)
    assert fires(timing, utc("2026-03-27T12:00:00Z"), 3) == ["2026-03-28T08:00Z", "2026-03-29T07:00Z",
                                                              "2026-03-30T07:00Z"]


def test_one_shots():
    now = utc("2026-03-28T10:00:00Z")
    later = job_timing(in_="2h", now=now, tenant_timezone=BERLIN)
    assert (later.kind, later.at) == ("once", utc("2026-03-28T12:00:00Z"))
    assert next_job_fire(later, after=utc("2026-03-28T12:00:00Z"), tenant_timezone=BERLIN) is None  # ran
    # A local time in the spring-forward gap moves forward by the gap: 02:30 -> 03:30 CEST.
    gap = job_timing(at="2026-03-29T02:30:00", now=now, tenant_timezone=BERLIN)
    assert gap.at == utc("2026-03-29T01:30:00Z")
    assert job_timing(at="2026-03-29T09:00:00+02:00", now=now, tenant_timezone=BERLIN).at == utc("2026-03-29T07:00:00Z")


def test_an_at_in_the_past_runs_at_once_within_a_minute_and_is_refused_beyond():
    now = utc("2026-03-28T10:00:00Z")
    assert job_timing(at="2026-03-28T09:59:30Z", now=now, tenant_timezone=BERLIN).at == now
    with pytest.raises(TimingError, match="^at: .* is in the past"):
        job_timing(at="2026-03-28T09:58:00Z", now=now, tenant_timezone=BERLIN)


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "exactly one of in, at"),
    ({"in_": "2h", "every": "1d"}, "got in, every"),
    ({"every": "1m"}, "every: between 5m and 366d"),
    ({"in_": "400d"}, "in: at most 366 days"),
    ({"cron": "0 9 * *"}, "cron: expected 5 fields"),
    ({"cron": "61 9 * * *"}, "cron: expected 5 fields"),
    ({"at": "tomorrow"}, "at: expected an ISO 8601 time"),
    ({"at": "2027-12-28T10:00:00Z"}, "at: at most 366 days"),
])
def test_refusals_name_the_argument(arguments, message):
    with pytest.raises(TimingError, match=message):
        job_timing(now=utc("2026-03-28T10:00:00Z"), tenant_timezone=BERLIN, **arguments)


def test_descriptions():
    now = utc("2026-03-28T10:00:00Z")
    assert job_timing(every="3d", now=now, tenant_timezone=BERLIN).describe() == "every 3d"
    assert job_timing(every="90m", now=now, tenant_timezone=BERLIN).describe() == "every 90m"
    assert job_timing(cron="0 9 * * 1-5", now=now, tenant_timezone=BERLIN).describe() == "cron 0 9 * * 1-5"
    assert job_timing(in_="2h", now=now, tenant_timezone=BERLIN).describe() == "once at 2026-03-28T12:00:00Z"

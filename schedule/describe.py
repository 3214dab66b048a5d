"""A heartbeat's schedule in a few words, for previews, workflow summaries and operators."""

from __future__ import annotations

from manifest.models import HeartbeatSpec

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def describe_schedule(heartbeat: HeartbeatSpec) -> str:
    """E.g. "every 60 min, active 08:00-18:00", "daily 09:00", "weekly Mon 09:00, cooldown 3600s"."""
    kind = heartbeat.schedule_type
    if kind == "interval":
        interval = heartbeat.interval_minutes
        if isinstance(interval, int):
            text = f"every {interval} min"
        else:
            assert interval is not None and heartbeat.business_hours is not None
            text = (f"every {interval.business_hours} min in {heartbeat.business_hours.start}-"
                    f"{heartbeat.business_hours.end}, else {interval.overnight} min")
    elif kind == "cron":
        text = f"cron {heartbeat.cron_expression}"
    elif kind == "daily":
        text = f"daily {heartbeat.time_of_day}"
    else:
        assert heartbeat.day_of_week is not None
        text = f"weekly {WEEKDAYS[heartbeat.day_of_week]} {heartbeat.time_of_day}"
    if heartbeat.active_hours:
        text += f", active {heartbeat.active_hours.start}-{heartbeat.active_hours.end}"
    if heartbeat.cooldown_seconds:
        text += f", cooldown {heartbeat.cooldown_seconds}s"
    return text

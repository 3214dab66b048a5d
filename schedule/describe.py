"""A heartbeat's schedule or a task's triggers in a few words, for previews, workflow summaries and operators."""

from __future__ import annotations

from manifest.models import HeartbeatSpec
from manifest.tasks import EventTrigger, HeartbeatTrigger, ScheduleTrigger, TaskSpec, ThresholdTrigger

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


def describe_triggers(task: TaskSpec) -> str:
    """E.g. "event case.created; poll every 15 min; cron 0 9 * * 1-5; error_rate > 0.02; a2a; manual"."""
    parts = []
    for trigger in task.triggers:
        if isinstance(trigger, HeartbeatTrigger):
            interval = trigger.interval_minutes
            parts.append(f"poll every {interval} min" if isinstance(interval, int) else
                         f"poll every {interval.business_hours} min in {trigger.business_hours.start}-"  # type: ignore[union-attr]
                         f"{trigger.business_hours.end}, else {interval.overnight} min")  # type: ignore[union-attr]
        elif isinstance(trigger, ScheduleTrigger):
            kind = trigger.schedule_type
            parts.append(f"cron {trigger.cron_expression}" if kind == "cron" else f"daily {trigger.time_of_day}"
                         if kind == "daily" else f"weekly {WEEKDAYS[trigger.day_of_week or 0]} {trigger.time_of_day}")
        elif isinstance(trigger, EventTrigger):
            parts.append(f"event {trigger.event}")
        elif isinstance(trigger, ThresholdTrigger):
            parts.append(f"{trigger.metric} > {trigger.above}" if trigger.above is not None
                         else f"{trigger.metric} < {trigger.below}")
        else:
            parts.append(trigger.type)
    text = "; ".join(parts)
    if task.active_hours:
        text += f", active {task.active_hours.start}-{task.active_hours.end}"
    return text

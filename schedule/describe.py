"""A heartbeat's schedule or a task's triggers in a few words, for previews, workflow summaries and operators."""

from __future__ import annotations

from manifest.models import HeartbeatSpec
from manifest.tasks import EventTrigger, HeartbeatTrigger, ScheduleTrigger, TaskSpec, ThresholdTrigger, Trigger

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


def describe_trigger(trigger: Trigger) -> str:
    """E.g. "event case.created", "poll every 15 min", "cron 0 9 * * 1-5", "error_rate > 0.02"."""
    if isinstance(trigger, HeartbeatTrigger):
        interval, window = trigger.interval_minutes, trigger.business_hours
        if isinstance(interval, int) or window is None:
            return f"poll every {interval} min"
        return f"poll every {interval.business_hours} min in {window.start}-{window.end}, else {interval.overnight} min"
    if isinstance(trigger, ScheduleTrigger):
        kind = trigger.schedule_type
        if kind == "cron":
            return f"cron {trigger.cron_expression}"
        if kind == "daily":
            return f"daily {trigger.time_of_day}"
        return f"weekly {WEEKDAYS[trigger.day_of_week or 0]} {trigger.time_of_day}"
    if isinstance(trigger, EventTrigger):
        return f"event {trigger.event}"
    if isinstance(trigger, ThresholdTrigger):
        return f"{trigger.metric} > {trigger.above}" if trigger.above is not None else f"{trigger.metric} < {trigger.below}"
    return trigger.type  # a2a, manual


def describe_triggers(task: TaskSpec) -> str:
    """E.g. "event case.created; poll every 15 min; cron 0 9 * * 1-5; error_rate > 0.02; a2a; manual"."""
    text = "; ".join(describe_trigger(trigger) for trigger in task.triggers)
    if task.active_hours:
        text += f", active {task.active_hours.start}-{task.active_hours.end}"
    return text

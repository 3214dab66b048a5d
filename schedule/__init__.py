"""Schedule maths: when each heartbeat is due. Pure functions, no I/O, no Temporal imports."""

from schedule.describe import describe_schedule, describe_triggers
from schedule.fires import heartbeat_zone, next_fire, tenant_salt, upcoming_fires

__all__ = ["describe_schedule", "describe_triggers", "heartbeat_zone", "next_fire", "tenant_salt", "upcoming_fires"]

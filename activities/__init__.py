"""Heartbeat activities. Import submodules directly:

- activities.contract: names, request/response models, caps, error types (pure: the workflow
  sandbox imports it, so this package's __init__ must import nothing heavy: no SQLAlchemy, no store);
- activities.heartbeat_activities: `HeartbeatActivities(store, skills).all()` for the worker;
- activities.prefilter, activities.agent, activities.ticks: the logic behind each activity.
"""

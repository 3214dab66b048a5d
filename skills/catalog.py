"""The registry a worker and the install-time checks use: the built-in skills and the app skills."""

from __future__ import annotations

from skills.builtin import builtin_skills
from skills.registry import SkillRegistry, load_app_skills


def default_registry(*, app_skills: bool = True) -> SkillRegistry:
    """A new registry: the built-in skills (records, kv, memory, team, email; see skills.builtin)
    and, unless `app_skills` is False, the app skills of `load_app_skills`."""
    registry = SkillRegistry()
    for skill in builtin_skills():
        registry.register(skill, source="built-in")
    if app_skills:
        load_app_skills(registry)
    return registry

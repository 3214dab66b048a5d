"""Skills and their tools, with risk levels (LOW / MEDIUM / HIGH). See skills.registry and docs/skills.md.

No store or SQLAlchemy import here: the store reaches handlers through SkillContext.
"""

from skills.catalog import default_registry
from skills.registry import (
    ENTRY_POINT_GROUP,
    RISKS,
    SKILL_MODULES_ENV,
    InvalidArgumentsError,
    Risk,
    Skill,
    SkillContext,
    SkillError,
    SkillLoadError,
    SkillRegistry,
    ToolSpec,
    UnknownSkillError,
    UnknownToolError,
    check_arguments,
    load_app_skills,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "RISKS",
    "SKILL_MODULES_ENV",
    "InvalidArgumentsError",
    "Risk",
    "Skill",
    "SkillContext",
    "SkillError",
    "SkillLoadError",
    "SkillRegistry",
    "ToolSpec",
    "UnknownSkillError",
    "UnknownToolError",
    "check_arguments",
    "default_registry",
    "load_app_skills",
]

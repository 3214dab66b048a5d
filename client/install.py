"""Install planning: what installing a manifest for a tenant changes, decided before anything changes.

Pure (no I/O): the sync orchestration (client.sync) reads the installed app, plans here, then
applies the plan to Temporal and records the app.

    plan = plan_install(manifest, tenant="acme", tenant_timezone="UTC", installed=None)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from contract.heartbeat import HeartbeatConfig
from contract.names import vision_workflow_id
from contract.task import EntityConfig, TaskConfig
from manifest.app import AppManifest
from store.installed import stored_manifest
from store.models import App


def manifest_json(manifest: AppManifest) -> dict[str, Any]:
    """The manifest as stored: canonical field names, JSON types (shorthand already expanded)."""
    return manifest.model_dump(mode="json")


def installed_hash(manifest: dict[str, Any], tenant_timezone: str) -> str:
    """Hash of what an installation depends on: the manifest and the tenant's timezone.

    Stored as the app's `manifest_hash`; equal hashes mean the app's workflows need no change.
    The timezone is part of it because every heartbeat config carries it (a tenant that moved
    to another zone must have its heartbeats reconfigured at the next install or sync).
    """
    canonical = json.dumps(
        {"manifest": manifest, "tenant_timezone": tenant_timezone},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def entity_configs(manifest: AppManifest, *, tenant: str, tenant_timezone: str) -> list[EntityConfig]:
    """One config per heartbeat, then one per task, in manifest order: each is one workflow."""
    heartbeats: list[EntityConfig] = [
        HeartbeatConfig(tenant=tenant, app=manifest.id, agent=agent.id, tenant_timezone=tenant_timezone,
                        heartbeat=heartbeat)
        for agent, heartbeat in manifest.heartbeats()
    ]
    return heartbeats + [
        TaskConfig(tenant=tenant, app=manifest.id, agent=agent.id, tenant_timezone=tenant_timezone, task=task)
        for agent, task in manifest.tasks()
    ]


@dataclass
class AppPlan:
    """What installing one manifest for one tenant changes, before anything is changed."""

    tenant: str
    manifest: AppManifest
    manifest_json: dict[str, Any]
    manifest_hash: str
    start: list[EntityConfig] = field(default_factory=list)  # new heartbeats and tasks
    reconfigure: list[EntityConfig] = field(default_factory=list)  # changed ones
    unchanged: list[EntityConfig] = field(default_factory=list)
    # Workflow ids of removed heartbeats and tasks, and of the vision loops of removed agents.
    cancel: list[str] = field(default_factory=list)
    # Same manifest and timezone as the installed app: no workflow writes at all.
    app_unchanged: bool = False

    @property
    def app(self) -> str:
        return self.manifest.id

    @property
    def configs(self) -> list[EntityConfig]:
        """Every heartbeat and task of the new manifest."""
        return [*self.start, *self.reconfigure, *self.unchanged]


def plan_install(
    manifest: AppManifest, *, tenant: str, tenant_timezone: str, installed: App | None
) -> AppPlan:
    """Diff the manifest against the installed app (None, or uninstalled: nothing installed).

    Old configs are recomputed from the stored manifest. The stored hash tells whether the tenant's
    timezone is still the one of that install; when it is not, every kept heartbeat and task is reconfigured.
    """
    new_json = manifest_json(manifest)
    plan = AppPlan(
        tenant=tenant,
        manifest=manifest,
        manifest_json=new_json,
        manifest_hash=installed_hash(new_json, tenant_timezone),
    )
    new_configs = entity_configs(manifest, tenant=tenant, tenant_timezone=tenant_timezone)
    if installed is None or installed.status != "installed":
        plan.start = new_configs
        return plan
    if installed.manifest_hash == plan.manifest_hash:
        plan.unchanged = new_configs
        plan.app_unchanged = True
        return plan

    old_manifest = stored_manifest(installed)
    old: dict[str, EntityConfig] = {}
    if old_manifest is not None:
        old = {
            cfg.workflow_id: cfg
            for cfg in entity_configs(old_manifest, tenant=tenant, tenant_timezone=tenant_timezone)
        }
    # Not the timezone of the last install: the workflows carry an older zone; reconfigure them all.
    timezone_moved = installed.manifest_hash != installed_hash(installed.manifest, tenant_timezone)
    new_ids = set()
    for cfg in new_configs:
        new_ids.add(cfg.workflow_id)
        before = old.get(cfg.workflow_id)
        if before is None:
            plan.start.append(cfg)
        elif timezone_moved or before.fingerprint != cfg.fingerprint:
            plan.reconfigure.append(cfg)
        else:
            plan.unchanged.append(cfg)
    plan.cancel = [workflow_id for workflow_id in old if workflow_id not in new_ids]
    if old_manifest is not None:
        kept_agents = {agent.id for agent in manifest.agents}
        plan.cancel += [vision_workflow_id(tenant, manifest.id, agent.id) for agent in old_manifest.agents
                        if agent.id not in kept_agents]
    return plan


def planned_calls(plan: AppPlan) -> int:
    """Temporal writes the plan needs (for the progress bar)."""
    if plan.app_unchanged:
        return 0
    return len(plan.start) + len(plan.reconfigure) + len(plan.cancel)


@dataclass
class InstallResult:
    app: str
    tenant: str
    started: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # of an unchanged app, found not running
    app_unchanged: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "tenant": self.tenant,
            "started": self.started,
            "reconfigured": self.reconfigured,
            "unchanged": self.unchanged,
            "cancelled": self.cancelled,
            "repaired": self.repaired,
        }

    @property
    def changed(self) -> bool:
        return bool(self.started or self.reconfigured or self.cancelled)


@dataclass
class UninstallResult:
    app: str
    tenant: str
    cancelled: list[str] = field(default_factory=list)
    was_installed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "tenant": self.tenant, "cancelled": self.cancelled}

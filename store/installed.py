"""The one way to read what an app declares, as installed for a tenant: `installed_app(...)`.

The agent turn (system prompt and tools), the tool calls (which skills an agent may use), a
delegation (who is in the caller's team) and the client library all read the installed manifest
through here. A version of a manifest never changes once recorded, so each is validated once per
process and kept by its hash (a hash names one content: the client library computes it from the
manifest); `manifest_hash` pins a reader to the version a run started with.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from manifest.app import AgentSpec, AppManifest
from store.models import App, AppVersion
from store.store import Areas

_CACHE_SIZE = 512
_parsed: OrderedDict[tuple[str, str, str], AppManifest | None] = OrderedDict()


@dataclass(frozen=True, slots=True)
class InstalledApp:
    """An installed app's manifest, validated, and the hash of that version."""

    manifest_hash: str
    manifest: AppManifest

    def agent(self, agent_id: str) -> AgentSpec | None:
        return next((agent for agent in self.manifest.agents if agent.id == agent_id), None)


def parse_stored(app: App | AppVersion) -> AppManifest | None:
    """A stored manifest as models, or None when it no longer validates (the manifest rules
    changed since it was installed). Parsed once per app version and process."""
    key = (app.tenant, app.id if isinstance(app, App) else app.app, app.manifest_hash)
    if key in _parsed:
        _parsed.move_to_end(key)
        return _parsed[key]
    manifest = app.manifest
    try:
        parsed: AppManifest | None = AppManifest.model_validate(manifest)
    except ValueError:  # pydantic's ValidationError
        parsed = None
    _parsed[key] = parsed
    if len(_parsed) > _CACHE_SIZE:
        _parsed.popitem(last=False)
    return parsed


def stored_manifest(app: App) -> AppManifest | None:
    """The manifest an app was last installed from, or None when it no longer validates."""
    return parse_stored(app)


async def installed_app(
    store: Areas, *, tenant: str, app: str, manifest_hash: str | None = None
) -> InstalledApp | None:
    """The app as installed for the tenant now, or in the version `manifest_hash` when given.

    None when the app is not installed (never, or uninstalled), when that version is unknown,
    or when its manifest no longer validates.
    """
    current = await store.apps.get(tenant=tenant, app=app)
    if current is None or current.status != "installed":
        return None
    version: App | AppVersion | None = current
    if manifest_hash is not None and manifest_hash != current.manifest_hash:
        version = await store.apps.version(tenant=tenant, app=app, manifest_hash=manifest_hash)
    if version is None:
        return None
    parsed = parse_stored(version)
    return None if parsed is None else InstalledApp(manifest_hash=version.manifest_hash, manifest=parsed)

"""Apps: which apps are installed for a tenant, from which manifest, and every manifest version.

Every manifest an app is installed from is kept by its hash (`app_versions`), so a run that
started on one version of an agent's definition can finish on it after a re-install.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, case, select, update

from store.checks import check_id, check_ids, check_json, check_text
from store.db import Area
from store.errors import StoreError
from store.models import App, AppSummary, AppVersion
from store.tables import AppRow, AppVersionRow
from store.types import UTCDateTime, utcnow

apps: Table = AppRow.__table__  # type: ignore[assignment]
app_versions: Table = AppVersionRow.__table__  # type: ignore[assignment]

# Ids per `IN (...)` read: well under SQLite's and asyncpg's bound-parameter limits.
APP_READ_BATCH = 500


class Apps(Area):
    async def record(
        self, *, tenant: str, app: str, name: str, version: str, manifest: dict[str, Any], manifest_hash: str
    ) -> App:
        """Record that `app` is installed for `tenant` from `manifest` (insert or update), and keep
        that manifest as a version of the app. `manifest_hash` names the manifest's content: two
        different manifests of an app never share one."""
        check_ids(tenant=tenant, app=app)
        if not isinstance(manifest, dict):
            raise StoreError("manifest must be a dict (the parsed manifest)")
        check_json(manifest, "manifest")
        values = {
            "name": check_text(name, "app name", max_length=200),
            "version": check_text(version, "app version", max_length=64),
            "manifest": manifest,
            "manifest_hash": check_text(manifest_hash, "manifest hash", max_length=128),
        }
        now = utcnow()
        insert = self.insert(apps).values(
            tenant_id=tenant, app_id=app, status="installed", installed_at=now, updated_at=now, **values
        )
        # A reinstall after an uninstall is a new installation; an update in place is not.
        reinstalled_at = case(
            (apps.c.status == "uninstalled", bindparam("reinstalled_at", now, type_=UTCDateTime)),
            else_=apps.c.installed_at,
        )
        insert = insert.on_conflict_do_update(
            index_elements=[apps.c.tenant_id, apps.c.app_id],
            set_={**values, "status": "installed", "installed_at": reinstalled_at, "updated_at": now},
        )
        keep_version = (
            self.insert(app_versions)
            .values(tenant_id=tenant, app_id=app, manifest_hash=manifest_hash, manifest=manifest, created_at=now)
            .on_conflict_do_nothing(
                index_elements=[app_versions.c.tenant_id, app_versions.c.app_id, app_versions.c.manifest_hash]
            )
        )
        async with self._db.write() as conn:
            await conn.execute(insert)
            await conn.execute(keep_version)
            row = (await conn.execute(_app_query(tenant, app))).one()
        return App.from_row(row)

    async def get(self, *, tenant: str, app: str) -> App | None:
        """The app as recorded (installed or uninstalled), or None."""
        check_ids(tenant=tenant, app=app)
        async with self._db.read() as conn:
            row = (await conn.execute(_app_query(tenant, app))).first()
        return App.from_row(row) if row else None

    async def get_many(self, *, tenant: str, app_ids: list[str]) -> dict[str, App]:
        """The recorded apps among `app_ids` (installed or uninstalled), by id; absent ones are left
        out. One read per APP_READ_BATCH ids, for planning a sync of many apps."""
        check_id(tenant, "tenant id")
        for app in app_ids:
            check_id(app, "app id")
        found: dict[str, App] = {}
        unique = sorted(set(app_ids))
        async with self._db.read() as conn:
            for start in range(0, len(unique), APP_READ_BATCH):
                batch = unique[start : start + APP_READ_BATCH]
                query = select(apps).where(apps.c.tenant_id == tenant, apps.c.app_id.in_(batch))
                found.update((row.app_id, App.from_row(row)) for row in (await conn.execute(query)).all())
        return found

    async def list(self, *, tenant: str, include_uninstalled: bool = False) -> list[App]:
        """The tenant's apps ordered by id; installed ones only unless asked otherwise."""
        check_id(tenant, "tenant id")
        query = select(apps).where(apps.c.tenant_id == tenant).order_by(apps.c.app_id)
        if not include_uninstalled:
            query = query.where(apps.c.status == "installed")
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [App.from_row(row) for row in rows]

    async def summaries(self, *, tenant: str) -> list[AppSummary]:
        """The tenant's installed apps ordered by id, without reading their manifests."""
        check_id(tenant, "tenant id")
        query = (select(apps.c.app_id, apps.c.name, apps.c.version, apps.c.installed_at, apps.c.updated_at)
                 .where(apps.c.tenant_id == tenant, apps.c.status == "installed").order_by(apps.c.app_id))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [AppSummary(tenant=tenant, id=row.app_id, name=row.name, version=row.version,
                           installed_at=row.installed_at, updated_at=row.updated_at) for row in rows]

    async def mark_uninstalled(self, *, tenant: str, app: str) -> bool:
        """Mark the app uninstalled (its data stays); False when it was not installed."""
        check_ids(tenant=tenant, app=app)
        statement = (
            update(apps)
            .where(apps.c.tenant_id == tenant, apps.c.app_id == app, apps.c.status == "installed")
            .values(status="uninstalled", updated_at=utcnow())
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def version(self, *, tenant: str, app: str, manifest_hash: str) -> AppVersion | None:
        """The manifest the app was installed from when its hash was `manifest_hash`, or None."""
        check_ids(tenant=tenant, app=app)
        query = select(app_versions).where(
            app_versions.c.tenant_id == tenant,
            app_versions.c.app_id == app,
            app_versions.c.manifest_hash == check_text(manifest_hash, "manifest hash", max_length=128),
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return AppVersion(tenant=row.tenant_id, app=row.app_id, manifest_hash=row.manifest_hash,
                          manifest=row.manifest, created_at=row.created_at)


def _app_query(tenant: str, app: str) -> Any:
    return select(apps).where(apps.c.tenant_id == tenant, apps.c.app_id == app)

"""What the store hands back for tenants and apps: frozen values, not live ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from store.types import iso_z


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant's settings. `provider` and the models are None until set (callers pick defaults)."""

    id: str
    timezone: str
    provider: str | None
    model_cheap: str | None
    model_standard: str | None
    model_premium: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Tenant:
        return cls(
            id=row.id,
            timezone=row.timezone,
            provider=row.llm_provider,
            model_cheap=row.model_cheap,
            model_standard=row.model_standard,
            model_premium=row.model_premium,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC with `Z`."""
        return {
            "id": self.id,
            "timezone": self.timezone,
            "provider": self.provider,
            "model_cheap": self.model_cheap,
            "model_standard": self.model_standard,
            "model_premium": self.model_premium,
            "created_at": iso_z(self.created_at),
            "updated_at": iso_z(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class App:
    """An app recorded for a tenant, with the manifest (as a dict) it was last installed from."""

    tenant: str
    id: str
    name: str
    version: str
    manifest: dict[str, Any]
    manifest_hash: str
    status: str
    installed_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> App:
        return cls(
            tenant=row.tenant_id,
            id=row.app_id,
            name=row.name,
            version=row.version,
            manifest=row.manifest,
            manifest_hash=row.manifest_hash,
            status=row.status,
            installed_at=row.installed_at,
            updated_at=row.updated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC with `Z`."""
        return {
            "tenant": self.tenant,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "manifest": self.manifest,
            "manifest_hash": self.manifest_hash,
            "status": self.status,
            "installed_at": iso_z(self.installed_at),
            "updated_at": iso_z(self.updated_at),
        }

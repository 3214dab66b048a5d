"""Documents from the outside: what state-machine workflows wrote, for operators (CLI, HTTP API).

    summaries = await list_documents(store, tenant="acme", app="billing")     # one per document
    shown = await show_document(store, tenant="acme", app="billing", name="invoice", version=2)
    shown.document.content, shown.latest_version

Reading only: documents are written by workflows (skills.documents). A document outlives the app's
install, so neither call requires the app to be installed; the tenant must exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.checks import require_tenant
from contract.errors import NotFound
from store.models import Document, DocumentSummary
from store.store import Areas


@dataclass(frozen=True, slots=True)
class ShownDocument:
    """A version of a document, with the document's latest version number."""

    document: Document
    latest_version: int

    def to_json(self) -> dict[str, Any]:
        return {**self.document.to_json(), "latest_version": self.latest_version}


async def list_documents(store: Areas, *, tenant: str, app: str | None = None) -> list[DocumentSummary]:
    """An existing tenant's documents (optionally of one app), by app and name, each with its latest version."""
    await require_tenant(store, tenant)
    return await store.documents.list(tenant=tenant, app=app)


async def show_document(store: Areas, *, tenant: str, app: str, name: str, version: int | None = None) -> ShownDocument:
    """The document's `version` (the latest when None); NotFound saying what there is instead."""
    await require_tenant(store, tenant)
    latest = await store.documents.get(tenant=tenant, app=app, name=name)
    if latest is None:
        known = [summary.name for summary in await store.documents.list(tenant=tenant, app=app)]
        raise NotFound(f"no document {name!r} in app {app!r} of tenant {tenant!r}"
                       f" (its documents: {', '.join(known) or 'none yet'})")
    if version is None or version == latest.version:
        return ShownDocument(latest, latest.version)
    found = await store.documents.get(tenant=tenant, app=app, name=name, version=version)
    if found is None:
        raise NotFound(f"document {name!r} of app {app!r} has no version {version} (versions 1 to {latest.version})")
    return ShownDocument(found, latest.version)

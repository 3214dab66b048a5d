"""Documents: the versioned JSON objects state-machine workflows keep, per tenant, app and name.

    doc = await store.documents.write(tenant="acme", app="crm", name="invoice", content={"total": 12},
                                      created_by="machine:acme:crm:billing:42", idempotency_key="call-7")
    doc.version                                               # 1 for the first write, then 2, 3, ...
    await store.documents.get(tenant="acme", app="crm", name="invoice")              # the latest, or None
    await store.documents.get(tenant="acme", app="crm", name="invoice", version=1)
    await store.documents.list(tenant="acme")                  # one DocumentSummary per document
    await store.documents.versions(tenant="acme", app="crm", name="invoice")         # oldest first

A write never changes a row: it adds the next version. Writes of one document are serialised (SQLite:
BEGIN IMMEDIATE; PostgreSQL: an advisory lock on the document), and (tenant, app, name, version) is
unique besides, so two writers never both get one version. A write with an `idempotency_key` (the
tool call's) happens once: a retry finds the version it wrote and writes nothing. `expected_latest`
makes a write conditional (compare-and-set): it raises VersionConflict when another version was
written since the one it was based on. Content (a JSON object) is checked against the document's
schema by the caller (skills.documents), not here.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, and_, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.machine import MAX_RESULT_BYTES
from store.checks import check_count, check_id, check_ids, check_json, check_limit, check_text
from store.db import Area
from store.errors import StoreError, VersionConflict
from store.models import Document, DocumentSummary
from store.tables import DocumentRow
from store.types import utcnow

documents: Table = DocumentRow.__table__  # type: ignore[assignment]

# A document's content travels through workflow history as a tool's result, which may be at most
# MAX_RESULT_BYTES of JSON: leave room for the result's other fields (name, version, time), so a
# document that could be written can always be returned.
MAX_CONTENT_BYTES = MAX_RESULT_BYTES - 1024
MAX_CREATED_BY_CHARS = 500
MAX_IDEMPOTENCY_KEY_CHARS = 600


class Documents(Area):
    async def write(
        self,
        *,
        tenant: str,
        app: str,
        name: str,
        content: dict[str, Any],
        created_by: str = "",
        idempotency_key: str | None = None,
        expected_latest: int | None = None,
    ) -> Document:
        """Write the next version of the document (version 1 when it has none) and return it.

        With `idempotency_key`, a write the tenant made before with that key is returned as it was
        (nothing is written, whatever `content` says now); the key used for another document is a
        StoreError. With `expected_latest` (0: no version yet), the write happens only if that is
        still the latest version, else VersionConflict.
        """
        check_ids(tenant=tenant, app=app)
        check_id(name, "document name")
        content = _check_content(content, name)
        created_by = check_text(created_by, "created_by", max_length=MAX_CREATED_BY_CHARS, allow_empty=True)
        key = None if idempotency_key is None else check_text(idempotency_key, "idempotency key",
                                                              max_length=MAX_IDEMPOTENCY_KEY_CHARS)
        if expected_latest is not None:
            check_count(expected_latest, "expected_latest")
        async with self._db.write() as conn:
            if self.dialect == "postgresql":  # one writer per document at a time (SQLite: BEGIN IMMEDIATE)
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                   {"k": f"documents/{tenant}/{app}/{name}"})
            if key is not None:
                found = await _by_key(conn, tenant, key)
                if found is not None:
                    return _same_document(found, app, name, key)
            latest = await _latest_version(conn, tenant, app, name)
            if expected_latest is not None and latest != expected_latest:
                raise VersionConflict(f"document {name!r} of app {app!r} is at version {latest}, not"
                                      f" {expected_latest}: it was written meanwhile; read it again", latest=latest)
            now = utcnow()
            insert = self.insert(documents).values(
                tenant_id=tenant, app_id=app, name=name, version=latest + 1, content=content, created_by=created_by,
                idempotency_key=key, created_at=now).returning(documents.c.id)
            if key is not None:
                # A concurrent write of another document may take the key first: found below.
                insert = insert.on_conflict_do_nothing(index_elements=[documents.c.tenant_id,
                                                                       documents.c.idempotency_key])
            try:
                inserted = (await conn.execute(insert)).scalar_one_or_none()
            except IntegrityError:
                # Only a writer that bypassed the lock could take this version; say so, write nothing.
                raise VersionConflict(f"document {name!r} of app {app!r}: version {latest + 1} was written by"
                                      " another writer at the same time; try again", latest=latest + 1) from None
            if inserted is None and key is not None:
                return _same_document(await _by_key(conn, tenant, key), app, name, key)
        return Document(app, name, latest + 1, content, now, created_by)

    async def get(self, *, tenant: str, app: str, name: str, version: int | None = None) -> Document | None:
        """The document's `version`, or its latest when None; None when there is no such version."""
        check_ids(tenant=tenant, app=app)
        check_id(name, "document name")
        query = select(documents).where(documents.c.tenant_id == tenant, documents.c.app_id == app,
                                        documents.c.name == name)
        if version is None:
            query = query.order_by(documents.c.version.desc()).limit(1)
        else:
            query = query.where(documents.c.version == _check_version(version))
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Document.from_row(row)

    async def by_idempotency_key(self, *, tenant: str, app: str, idempotency_key: str) -> Document | None:
        """The version the tenant's app wrote with this key, if any (a retried call's first write)."""
        check_ids(tenant=tenant, app=app)
        key = check_text(idempotency_key, "idempotency key", max_length=MAX_IDEMPOTENCY_KEY_CHARS)
        async with self._db.read() as conn:
            row = await _by_key(conn, tenant, key)
        return None if row is None or row.app_id != app else Document.from_row(row)

    async def list(self, *, tenant: str, app: str | None = None, limit: int = 1000) -> list[DocumentSummary]:
        """One summary per document of the tenant (optionally of one app), by app and name."""
        check_id(tenant, "tenant id")
        scope = [documents.c.tenant_id == tenant]
        if app is not None:
            scope.append(documents.c.app_id == check_id(app, "app id"))
        latest = (select(documents.c.app_id, documents.c.name, func.max(documents.c.version).label("version"))
                  .where(*scope).group_by(documents.c.app_id, documents.c.name).subquery())
        query = (select(documents.c.app_id, documents.c.name, documents.c.version, documents.c.created_at)
                 .join(latest, and_(documents.c.app_id == latest.c.app_id, documents.c.name == latest.c.name,
                                    documents.c.version == latest.c.version))
                 .where(*scope)
                 .order_by(documents.c.app_id, documents.c.name)
                 .limit(check_limit(limit)))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [DocumentSummary(row.app_id, row.name, row.version, row.created_at) for row in rows]

    async def versions(self, *, tenant: str, app: str, name: str, limit: int = 1000) -> list[Document]:
        """The document's newest `limit` versions, oldest first ([] when it has none)."""
        check_ids(tenant=tenant, app=app)
        check_id(name, "document name")
        query = (select(documents).where(documents.c.tenant_id == tenant, documents.c.app_id == app,
                                         documents.c.name == name)
                 .order_by(documents.c.version.desc()).limit(check_limit(limit)))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Document.from_row(row) for row in reversed(rows)]


def _check_content(content: Any, name: str) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise StoreError(f"content of document {name!r} must be a JSON object (got {type(content).__name__})")
    check_json(content, f"content of document {name!r}")
    encoded = json.dumps(content, allow_nan=False, ensure_ascii=False)
    size = len(encoded.encode())
    if size > MAX_CONTENT_BYTES:
        raise StoreError(f"content of document {name!r} must be at most {MAX_CONTENT_BYTES:,} bytes of JSON"
                         f" (got {size:,}): keep big data elsewhere and put its reference in the document")
    # What the database will hand back (keys as strings, tuples as lists): the written value is that.
    return json.loads(encoded)


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StoreError(f"version must be a positive integer (got {version!r})")
    return version


async def _latest_version(conn: AsyncConnection, tenant: str, app: str, name: str) -> int:
    query = select(func.coalesce(func.max(documents.c.version), 0)).where(
        documents.c.tenant_id == tenant, documents.c.app_id == app, documents.c.name == name)
    return int((await conn.execute(query)).scalar_one())


async def _by_key(conn: AsyncConnection, tenant: str, key: str) -> Any:
    query = select(documents).where(documents.c.tenant_id == tenant, documents.c.idempotency_key == key)
    return (await conn.execute(query)).first()


def _same_document(row: Any, app: str, name: str, key: str) -> Document:
    """The earlier write of a retried call; the key reused for another document is a mistake."""
    if (row.app_id, row.name) != (app, name):
        raise StoreError(f"idempotency key {key!r} was used already for document {row.name!r} of app"
                         f" {row.app_id!r} (version {row.version}); a retried call writes the same document")
    return Document.from_row(row)

"""Documents on SQLite and PostgreSQL: each write is the next version, the latest is the newest,
tenants and apps never see each other's documents (prefix-sharing ids too), a retried write with its
idempotency key writes nothing, concurrent writers never share a version, and a conditional write
refuses a stale base."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from contract.errors import Conflict
from store import StoreError
from store.errors import VersionConflict
from store.tables import DocumentRow

TENANT, APP = "acme", "crm"


async def write(store, content, *, tenant=TENANT, app=APP, name="invoice", **extra):
    return await store.documents.write(tenant=tenant, app=app, name=name, content=content, **extra)


async def test_each_write_is_the_next_version_and_get_reads_the_latest_or_one(store):
    first = await write(store, {"total": 10}, created_by="machine:acme:crm:billing:run-1")
    second = await write(store, {"total": 12, "lines": [{"sku": "a"}]})
    third = await write(store, {"total": 15})
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert first.created_by == "machine:acme:crm:billing:run-1" and second.created_by == ""

    latest = await store.documents.get(tenant=TENANT, app=APP, name="invoice")
    assert latest == third and latest.content == {"total": 15}
    assert await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=2) == second
    assert (await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=1)).content == {"total": 10}
    assert await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=4) is None
    assert await store.documents.get(tenant=TENANT, app=APP, name="receipt") is None

    body = first.to_json()
    assert body.keys() == {"app", "name", "version", "content", "created_at", "created_by"}
    assert body["created_at"].endswith("Z") and body["version"] == 1
    assert first.created_at.tzinfo is not None

    history = await store.documents.versions(tenant=TENANT, app=APP, name="invoice")
    assert [doc.version for doc in history] == [1, 2, 3]
    assert [doc.content["total"] for doc in history] == [10, 12, 15]
    assert [doc.version for doc in await store.documents.versions(tenant=TENANT, app=APP, name="invoice",
                                                                  limit=2)] == [2, 3]
    assert await store.documents.versions(tenant=TENANT, app=APP, name="receipt") == []


async def test_list_has_one_summary_per_document_with_its_latest_version(store):
    for content in ({"n": 1}, {"n": 2}, {"n": 3}):
        last = await write(store, content)
    await write(store, {"n": 1}, name="contract")
    await write(store, {"n": 1}, app="billing", name="invoice")

    summaries = await store.documents.list(tenant=TENANT)
    assert [(s.app, s.name, s.version) for s in summaries] == [
        ("billing", "invoice", 1), ("crm", "contract", 1), ("crm", "invoice", 3)]
    assert summaries[-1].updated_at == last.created_at
    assert summaries[-1].to_json()["updated_at"].endswith("Z")
    assert [(s.app, s.name) for s in await store.documents.list(tenant=TENANT, app=APP)] == [
        ("crm", "contract"), ("crm", "invoice")]
    assert await store.documents.list(tenant="nobody") == []


async def test_tenants_and_apps_with_shared_prefixes_never_see_each_other(store):
    await write(store, {"owner": "acme/crm"})
    await write(store, {"owner": "acme/crm"})
    await write(store, {"owner": "acme2/crm"}, tenant="acme2")
    await write(store, {"owner": "acme/crm2"}, app="crm2")

    for tenant, app, versions in (("acme", "crm", 2), ("acme2", "crm", 1), ("acme", "crm2", 1)):
        latest = await store.documents.get(tenant=tenant, app=app, name="invoice")
        assert (latest.version, latest.content) == (versions, {"owner": f"{tenant}/{app}"})
        history = await store.documents.versions(tenant=tenant, app=app, name="invoice")
        assert {doc.content["owner"] for doc in history} == {f"{tenant}/{app}"}
    assert await store.documents.get(tenant="acme2", app="crm2", name="invoice") is None
    assert [(s.app, s.version) for s in await store.documents.list(tenant="acme")] == [("crm", 2), ("crm2", 1)]
    assert [(s.app, s.version) for s in await store.documents.list(tenant="acme2")] == [("crm", 1)]
    assert await store.documents.list(tenant="acme", app="crm2") == (await store.documents.list(tenant="acme"))[1:]


async def test_a_retried_write_with_its_key_returns_the_first_version_and_writes_nothing(store):
    first = await write(store, {"total": 10}, idempotency_key="run-1/validate/0")
    again = await write(store, {"total": 99}, idempotency_key="run-1/validate/0")  # a retry: content ignored
    assert again == first
    assert [doc.content for doc in await store.documents.versions(tenant=TENANT, app=APP, name="invoice")] == [
        {"total": 10}]
    found = await store.documents.by_idempotency_key(tenant=TENANT, app=APP, idempotency_key="run-1/validate/0")
    assert found == first
    assert await store.documents.by_idempotency_key(tenant=TENANT, app="crm2", idempotency_key="run-1/validate/0") \
        is None
    assert await store.documents.by_idempotency_key(tenant=TENANT, app=APP, idempotency_key="other") is None

    # A retry after someone else wrote still gets its own version back, not the latest.
    await write(store, {"total": 11})
    assert await write(store, {"total": 10}, idempotency_key="run-1/validate/0") == first
    # Writes without a key never collide with each other.
    assert (await write(store, {"total": 12})).version == 3

    # The key belongs to the tenant: another tenant's key of the same text is its own.
    other = await write(store, {"total": 1}, tenant="acme2", idempotency_key="run-1/validate/0")
    assert (other.version, other.content) == (1, {"total": 1})
    # The same key for another document is a mistake, refused without writing.
    with pytest.raises(StoreError, match="used already for document 'invoice'"):
        await write(store, {"x": 1}, name="contract", idempotency_key="run-1/validate/0")
    assert await store.documents.get(tenant=TENANT, app=APP, name="contract") is None


async def test_concurrent_writers_get_distinct_versions(store):
    written = await asyncio.gather(*(write(store, {"writer": i}) for i in range(10)))
    assert sorted(doc.version for doc in written) == list(range(1, 11))
    history = await store.documents.versions(tenant=TENANT, app=APP, name="invoice")
    assert [doc.version for doc in history] == list(range(1, 11))
    assert sorted(doc.content["writer"] for doc in history) == list(range(10))
    # Each writer got back the version that holds its own content.
    assert {doc.version: doc.content["writer"] for doc in written} == {
        doc.version: doc.content["writer"] for doc in history}


async def test_concurrent_retries_of_one_call_write_one_version(store):
    written = await asyncio.gather(*(write(store, {"attempt": i}, idempotency_key="run-9/call/0") for i in range(8)))
    assert {doc.version for doc in written} == {1}
    assert len({doc.content["attempt"] for doc in written}) == 1
    assert len(await store.documents.versions(tenant=TENANT, app=APP, name="invoice")) == 1


async def test_a_conditional_write_refuses_a_stale_base(store):
    assert (await write(store, {"n": 1}, expected_latest=0)).version == 1
    assert (await write(store, {"n": 2}, expected_latest=1)).version == 2
    with pytest.raises(VersionConflict, match="is at version 2, not 1") as refused:
        await write(store, {"n": 3}, expected_latest=1)
    assert refused.value.latest == 2 and isinstance(refused.value, Conflict)
    with pytest.raises(VersionConflict):
        await write(store, {"n": 1}, name="contract", expected_latest=3)
    assert [doc.version for doc in await store.documents.versions(tenant=TENANT, app=APP, name="invoice")] == [1, 2]
    assert await store.documents.get(tenant=TENANT, app=APP, name="contract") is None


async def test_a_version_is_unique_even_for_a_writer_that_bypasses_the_area(store):
    row = {"tenant_id": TENANT, "app_id": APP, "name": "invoice", "version": 1, "content": {}, "created_by": "",
           "created_at": datetime(2026, 12, 1, tzinfo=UTC)}
    await write(store, {"n": 1})
    with pytest.raises(IntegrityError):
        async with store.engine.begin() as conn:
            await conn.execute(DocumentRow.__table__.insert().values(**row))
    with pytest.raises(IntegrityError):  # versions start at 1
        async with store.engine.begin() as conn:
            await conn.execute(DocumentRow.__table__.insert().values(**{**row, "version": 0}))


async def test_a_write_in_a_unit_of_work_that_fails_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            assert (await tx.documents.write(tenant=TENANT, app=APP, name="invoice", content={"n": 1})).version == 1
            raise RuntimeError("the rest of the unit failed")
    assert await store.documents.get(tenant=TENANT, app=APP, name="invoice") is None


async def test_content_is_stored_as_the_json_it_becomes(store):
    doc = await write(store, {"lines": ("a", "b"), "nested": {"ok": True, "n": None}, "ünï": "✓"})
    assert doc.content == {"lines": ["a", "b"], "nested": {"ok": True, "n": None}, "ünï": "✓"}
    assert (await store.documents.get(tenant=TENANT, app=APP, name="invoice")).content == doc.content


@pytest.mark.parametrize(("fields", "message"), [
    ({"tenant": "Acme"}, "tenant id must be lowercase"),
    ({"app": "crm:x"}, "app id must be lowercase"),
    ({"name": "In Voice"}, "document name must be lowercase"),
    ({"content": [1, 2]}, "must be a JSON object"),
    ({"content": {"x": float("nan")}}, "not JSON-serialisable"),
    ({"content": {"x": "a\x00b"}}, "NUL"),
    ({"content": {"x": "y" * 300_000}}, "must be at most 261,120 bytes of JSON"),
    ({"created_by": 7}, "created_by must be a string"),
    ({"idempotency_key": ""}, "idempotency key must not be empty"),
    ({"expected_latest": -1}, "expected_latest must be a non-negative integer"),
])
async def test_bad_writes_are_refused_before_sql(store, fields, message):
    args = {"tenant": TENANT, "app": APP, "name": "invoice", "content": {"n": 1}, **fields}
    with pytest.raises(StoreError, match=message):
        await store.documents.write(**args)
    assert await store.documents.list(tenant=TENANT) == []


async def test_bad_reads_are_refused(store):
    for version in (0, -1, True, "1"):
        with pytest.raises(StoreError, match="version must be a positive integer"):
            await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=version)
    with pytest.raises(StoreError, match="tenant id"):
        await store.documents.list(tenant="")
    with pytest.raises(StoreError, match="app id"):
        await store.documents.list(tenant=TENANT, app="CRM")

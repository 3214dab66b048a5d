"""The document tools of state-machine workflows (skills.documents) over a real store, SQLite and
PostgreSQL: what each tool writes and returns, each error (nothing written), and idempotency."""

from __future__ import annotations

import asyncio
import json

import pytest

from contract.errors import Conflict, InvalidInput, NotFound
from contract.machine import MAX_RESULT_BYTES
from manifest.machines import BUILTIN_DOCUMENT_TOOLS
from skills.documents import DOCUMENT_TOOLS, DocumentError, DocumentNotFound, run_document_tool
from store.documents import MAX_CONTENT_BYTES

TENANT, APP = "acme", "billing"
INVOICE = {
    "type": "object",
    "properties": {
        "status": {"enum": ["draft", "sent", "paid"]},
        "total": {"type": "number", "minimum": 0},
        "customer": {"type": "object", "properties": {"email": {"type": "string", "pattern": "@"}}},
        "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
    "required": ["status"],
}
DOCUMENTS = {"invoice": INVOICE, "note": {"type": "object"}}


async def call(store, tool, arguments, *, key=None, tenant=TENANT, app=APP, created_by="", documents=DOCUMENTS):
    return await run_document_tool(store, tenant=tenant, app=app, tool=tool, arguments=arguments,
                                   documents=documents, idempotency_key=key, created_by=created_by)


async def versions(store, name="invoice", tenant=TENANT, app=APP):
    return [(doc.version, doc.content) for doc in await store.documents.versions(tenant=tenant, app=app, name=name)]


def test_the_tools_are_the_manifests_builtins():
    assert DOCUMENT_TOOLS == BUILTIN_DOCUMENT_TOOLS == ("create_document", "load_document", "update_document")
    assert issubclass(DocumentError, InvalidInput)
    assert issubclass(DocumentNotFound, DocumentError) and issubclass(DocumentNotFound, NotFound)


# ---------------------------------------------------------------------------------------- create


async def test_create_writes_exactly_the_content_as_the_next_version(store):
    first = await call(store, "create_document", {"document": "invoice", "update": {"status": "draft", "total": 5}},
                       key="run-1/a/0", created_by="machine:acme:billing:run-1")
    assert first.keys() == {"document", "version", "content", "created_at"}
    assert (first["document"], first["version"], first["content"]) == ("invoice", 1, {"status": "draft", "total": 5})
    assert first["created_at"].endswith("Z")
    json.dumps(first)  # travels through workflow history as JSON

    # Creating again is a new version with exactly the new content (nothing merged from before).
    second = await call(store, "create_document", {"document": "invoice", "content": {"status": "sent"}})
    assert (second["version"], second["content"]) == (2, {"status": "sent"})
    assert await versions(store) == [(1, {"status": "draft", "total": 5}), (2, {"status": "sent"})]
    stored = await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=1)
    assert stored.created_by == "machine:acme:billing:run-1"


async def test_create_without_content_is_an_empty_object(store):
    result = await call(store, "create_document", {"document": "note"})
    assert (result["version"], result["content"]) == (1, {})
    # ...which a schema that requires fields refuses.
    with pytest.raises(DocumentError, match=r"content: 'status' is a required property"):
        await call(store, "create_document", {"document": "invoice"})
    assert await versions(store) == []


# ---------------------------------------------------------------------------------------- update


async def test_update_merges_into_the_latest_shallowly(store):
    await call(store, "create_document", {"document": "invoice", "update": {
        "status": "draft", "total": 5, "customer": {"email": "a@b.c", "name": "Ada"}}})
    result = await call(store, "update_document", {"document": "invoice", "update": {
        "status": "sent", "customer": {"email": "ops@b.c"}, "memo": None}})
    # Top-level keys are replaced whole (customer.name is gone); untouched keys stay; null stays null.
    assert (result["version"], result["content"]) == (2, {
        "status": "sent", "total": 5, "customer": {"email": "ops@b.c"}, "memo": None})
    assert (await store.documents.get(tenant=TENANT, app=APP, name="invoice")).content == result["content"]
    assert (await store.documents.get(tenant=TENANT, app=APP, name="invoice", version=1)).content["status"] == "draft"


async def test_update_of_a_document_never_created_is_not_found_and_writes_nothing(store):
    with pytest.raises(DocumentNotFound, match="document 'invoice' has no version yet.*create_document"):
        await call(store, "update_document", {"document": "invoice", "update": {"status": "paid"}}, key="k")
    assert await versions(store) == []


async def test_an_update_the_schema_refuses_writes_nothing(store):
    await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}})
    with pytest.raises(DocumentError, match=r"content\.total: -1 is less than the minimum of 0") as refused:
        await call(store, "update_document", {"document": "invoice", "update": {"total": -1}}, key="k1")
    assert "nothing written" in str(refused.value)
    with pytest.raises(DocumentError, match=r"content\.lines\[1\]: 'sku' is a required property"):
        await call(store, "update_document", {"document": "invoice", "update": {"lines": [{"sku": "a"}, {}]}})
    with pytest.raises(DocumentError, match=r"content\.customer\.email: 'nobody' does not match '@'"):
        await call(store, "update_document", {"document": "invoice", "update": {"customer": {"email": "nobody"}}})
    assert await versions(store) == [(1, {"status": "draft"})]
    # The key of a refused call was not used up: the corrected retry writes.
    fixed = await call(store, "update_document", {"document": "invoice", "update": {"total": 1}}, key="k1")
    assert (fixed["version"], fixed["content"]) == (2, {"status": "draft", "total": 1})


async def test_schema_errors_name_several_fields_at_most_three(store):
    content = {"status": "lost", "total": -1, "lines": [{}], "customer": {"email": "x"}}
    with pytest.raises(DocumentError) as refused:
        await call(store, "create_document", {"document": "invoice", "update": content})
    message = str(refused.value)
    assert message.count("content.") == 3 and "(and 1 more)" in message
    assert await versions(store) == []


async def test_concurrent_updates_lose_nothing(store):
    await call(store, "create_document", {"document": "note", "update": {"start": True}})
    results = await asyncio.gather(*(call(store, "update_document", {"document": "note", "update": {f"k{i}": i}},
                                          key=f"run/{i}") for i in range(10)))
    assert sorted(result["version"] for result in results) == list(range(2, 12))
    latest = await store.documents.get(tenant=TENANT, app=APP, name="note")
    assert latest.version == 11
    assert latest.content == {"start": True, **{f"k{i}": i for i in range(10)}}


# ------------------------------------------------------------------------------------------ load


async def test_load_reads_the_latest_or_a_version_in_either_shape(store):
    for status in ("draft", "sent", "paid"):
        await call(store, "create_document", {"document": "invoice", "update": {"status": status}})
    latest = await call(store, "load_document", {"document": "invoice"})
    assert (latest["document"], latest["version"], latest["content"]) == ("invoice", 3, {"status": "paid"})
    assert latest.keys() == {"document", "version", "content", "created_at"}
    assert (await call(store, "load_document", {"where": {"name": "invoice"}}))["version"] == 3
    assert (await call(store, "load_document", {"where": {"name": "invoice", "version": 1}}))["content"] == {
        "status": "draft"}
    assert (await call(store, "load_document", {"document": "invoice", "version": 2}))["content"] == {
        "status": "sent"}


async def test_load_of_a_missing_document_or_version_is_not_found(store):
    with pytest.raises(DocumentNotFound, match="document 'invoice' has no version yet"):
        await call(store, "load_document", {"document": "invoice"})
    await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}})
    with pytest.raises(DocumentNotFound, match="document 'invoice' has no version 4 \\(its latest is 1\\)"):
        await call(store, "load_document", {"where": {"name": "invoice", "version": 4}})


async def test_one_tenant_or_app_never_loads_anothers_document(store):
    await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}})
    for tenant, app in (("acme2", APP), (TENANT, "billing2")):
        with pytest.raises(DocumentNotFound):
            await call(store, "load_document", {"document": "invoice"}, tenant=tenant, app=app)
        with pytest.raises(DocumentNotFound):
            await call(store, "update_document", {"document": "invoice", "update": {"status": "paid"}},
                       tenant=tenant, app=app)
    own = await call(store, "create_document", {"document": "invoice", "update": {"status": "sent"}}, tenant="acme2")
    assert own["version"] == 1
    assert (await call(store, "load_document", {"document": "invoice"}))["content"] == {"status": "draft"}


# ----------------------------------------------------------------------------------- idempotency


async def test_a_retried_create_returns_its_first_version(store):
    first = await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}}, key="r/1")
    again = await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}}, key="r/1")
    assert again == first
    assert await versions(store) == [(1, {"status": "draft"})]


async def test_a_retried_update_returns_its_first_version_even_after_later_writes(store):
    await call(store, "create_document", {"document": "invoice", "update": {"status": "draft", "total": 1}})
    first = await call(store, "update_document", {"document": "invoice", "update": {"total": 2}}, key="r/2")
    await call(store, "update_document", {"document": "invoice", "update": {"status": "sent"}}, key="r/3")
    again = await call(store, "update_document", {"document": "invoice", "update": {"total": 2}}, key="r/2")
    assert again == first and again["version"] == 2
    assert [version for version, _ in await versions(store)] == [1, 2, 3]
    # A retry is answered even if the schema would now refuse the content (the write happened).
    strict = {"invoice": {**INVOICE, "required": ["status", "approved_by"]}, "note": {}}
    assert await call(store, "update_document", {"document": "invoice", "update": {"total": 2}}, key="r/2",
                      documents=strict) == first


async def test_a_key_used_for_another_document_is_refused(store):
    await call(store, "create_document", {"document": "note"}, key="r/1")
    with pytest.raises(DocumentError, match="idempotency key 'r/1' was used already for document 'note'"):
        await call(store, "create_document", {"document": "invoice", "update": {"status": "draft"}}, key="r/1")
    assert await versions(store) == []


async def test_concurrent_retries_of_one_update_write_once(store):
    await call(store, "create_document", {"document": "note", "update": {"n": 0}})
    results = await asyncio.gather(*(call(store, "update_document", {"document": "note", "update": {"n": 1}},
                                          key="r/once") for _ in range(6)))
    assert {result["version"] for result in results} == {2}
    assert await versions(store, "note") == [(1, {"n": 0}), (2, {"n": 1})]


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("delete_document", {"document": "invoice"}, "'delete_document' is not a document tool"),
    ("create_document", ["invoice"], "arguments must be an object"),
    ("create_document", {"update": {"status": "draft"}}, "document: NAME is required.*declared documents: invoice, note"),
    ("create_document", {"document": "invoce", "update": {}}, "no document 'invoce' is declared.*invoice, note"),
    ("create_document", {"document": 7}, "document must be a document name"),
    ("create_document", {"document": "note", "update": [1]}, "update must be an object of fields"),
    ("create_document", {"document": "note", "content": "text"}, "content must be an object of fields"),
    ("create_document", {"document": "note", "update": {}, "content": {}}, "not both"),
    ("create_document", {"document": "note", "contents": {}}, "unknown argument\\(s\\) contents"),
    ("update_document", {"document": "note"}, "update: \\{...\\} is required"),
    ("update_document", {"document": "note", "content": {}}, "unknown argument\\(s\\) content"),
    ("update_document", {"document": "note", "update": None}, "update must be an object"),
    ("load_document", {}, "document: NAME is required"),
    ("load_document", {"where": "note"}, "where must be an object"),
    ("load_document", {"where": {"document": "note"}}, "where: unknown key\\(s\\) document"),
    ("load_document", {"where": {"version": 1}}, "where.name: NAME is required"),
    ("load_document", {"where": {"name": "ghost"}}, "no document 'ghost' is declared"),
    ("load_document", {"where": {"name": "note"}, "version": 1}, "not both"),
    ("load_document", {"document": "note", "version": 0}, "version must be a positive whole number"),
    ("load_document", {"document": "note", "version": "2"}, "version must be a positive whole number"),
    ("load_document", {"where": {"name": "note", "version": True}}, "where.version must be a positive"),
])
async def test_bad_calls_raise_a_clear_document_error_and_write_nothing(store, tool, arguments, message):
    with pytest.raises(DocumentError, match=message) as refused:
        await call(store, tool, arguments, key="r/bad")
    assert not isinstance(refused.value, NotFound)
    assert await store.documents.list(tenant=TENANT) == []


async def test_what_the_store_refuses_comes_as_a_document_error(store):
    with pytest.raises(DocumentError, match="create_document: content of document 'note' must be at most"):
        await call(store, "create_document", {"document": "note", "update": {"text": "x" * 300_000}})
    with pytest.raises(DocumentError, match="tenant id must be lowercase"):
        await call(store, "create_document", {"document": "note"}, tenant="ACME")
    with pytest.raises(DocumentError, match="idempotency key must not be empty"):
        await call(store, "create_document", {"document": "note"}, key="")
    assert await store.documents.list(tenant=TENANT) == []


async def test_the_biggest_document_that_can_be_written_can_be_returned_as_a_calls_result(store):
    # The result of a call (name, version, content, time) must fit a machine call's result: a write
    # that succeeded and then could not be returned would leave a version behind a failed call.
    name = "d" * 63
    documents = {name: {"type": "object"}}
    text = "é" * ((MAX_CONTENT_BYTES - len('{"text": ""}')) // 2)  # two bytes each in UTF-8
    result = await call(store, "create_document", {"document": name, "update": {"text": text}}, documents=documents)
    assert len(json.dumps({"text": text}, ensure_ascii=False).encode()) == MAX_CONTENT_BYTES
    assert len(json.dumps(result, ensure_ascii=False, allow_nan=False).encode()) <= MAX_RESULT_BYTES
    loaded = await call(store, "load_document", {"document": name}, documents=documents)
    assert len(json.dumps(loaded, ensure_ascii=False).encode()) <= MAX_RESULT_BYTES
    with pytest.raises(DocumentError, match="must be at most"):
        await call(store, "create_document", {"document": name, "update": {"text": text + "x"}}, documents=documents)
    assert await versions(store, name) == [(1, {"text": text})]


async def test_a_schema_that_is_not_one_is_a_document_error(store):
    with pytest.raises(DocumentError, match="the schema of document 'note' is not a valid JSON Schema"):
        await call(store, "create_document", {"document": "note"}, documents={"note": {"type": "thing"}})
    assert await store.documents.list(tenant=TENANT) == []


async def test_an_update_that_keeps_losing_is_a_conflict(store, monkeypatch):
    # One attempt only, and another writer lands between the read and the write: a Conflict to retry.
    import skills.documents as tools

    monkeypatch.setattr(tools, "MAX_UPDATE_ATTEMPTS", 1)
    await call(store, "create_document", {"document": "note", "update": {"n": 0}})
    real_get = store.documents.get

    async def get_then_someone_writes(**kwargs):
        found = await real_get(**kwargs)
        await store.documents.write(tenant=TENANT, app=APP, name="note", content={"n": "other"})
        return found

    monkeypatch.setattr(store.documents, "get", get_then_someone_writes)
    with pytest.raises(Conflict, match="written by others 1 times"):
        await call(store, "update_document", {"document": "note", "update": {"n": 1}})
    monkeypatch.undo()
    assert await versions(store, "note") == [(1, {"n": 0}), (2, {"n": "other"})]

"""The data store on SQLite and PostgreSQL (see conftest.py); every test starts from an empty DB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from store import NotFoundError, Store, StoreError
from store.config import normalize_database_url, resolve_database_url
from store.errors import DatabaseUrlError
from store.migrate import head_revision
from store.tables import Base
from store.types import UTCDateTime
from tests.store_json import jsonable

if TYPE_CHECKING:
    from conftest import Database

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- migrations


async def _schema_state(database: Database) -> tuple[str | None, set[str], list[tuple]]:
    """(alembic revision, table names, differences between the migrated schema and tables.py)."""
    engine = create_async_engine(
        normalize_database_url(database.url), connect_args=database.connect_args
    )
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn):
                def include_object(obj, name, type_, reflected, compare_to):
                    # The GIN index exists on PostgreSQL only (ddl_if); autogenerate ignores ddl_if.
                    return not (
                        sync_conn.dialect.name == "sqlite" and name == "ix_app_records_data"
                    )

                context = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "include_object": include_object}
                )
                return (
                    context.get_current_revision(),
                    set(inspect(sync_conn).get_table_names()),
                    compare_metadata(context, Base.metadata),
                )

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_migrations_apply_from_nothing_and_match_the_tables(database: Database) -> None:
    store = await database.open()
    await store.tenants.upsert(tenant="acme", timezone="Europe/Berlin")
    await store.close()

    revision, tables, differences = await _schema_state(database)
    assert revision == head_revision() == "0009"
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    # The hand-written migration and tables.py describe the same schema.
    assert differences == []


async def test_second_open_is_a_no_op_and_keeps_data(database: Database) -> None:
    first = await database.open()
    await first.kv.set(tenant="acme", app="crm", key="lead:1", value={"n": 1})
    await first.close()

    second = await database.open()
    try:
        assert await second.kv.get(tenant="acme", app="crm", key="lead:1") == {"n": 1}
    finally:
        await second.close()
    revision, _, _ = await _schema_state(database)
    assert revision == head_revision()


async def test_concurrent_first_opens_migrate_once(database: Database) -> None:
    # CLI and worker may both be the first to open a new database.
    stores = await asyncio.gather(*(database.open() for _ in range(4)))
    try:
        await stores[0].tenants.upsert(tenant="acme")
        for other in stores[1:]:
            assert (await other.tenants.get(tenant="acme")) is not None
    finally:
        for opened in stores:
            await opened.close()


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_urls_are_normalised_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u:secret@h/db", "postgresql+psycopg2://u@h/db", "heartbeats.db", ""]
)
def test_unknown_url_schemes_fail_closed(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        normalize_database_url(url)
    assert "secret" not in str(raised.value)


def test_database_url_comes_from_the_environment_or_defaults_under_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEARTBEATS_DATABASE_URL", raising=False)
    assert resolve_database_url() == f"sqlite+aiosqlite:///{tmp_path}/.data/heartbeats.db"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", "postgres://u@h/db")
    assert resolve_database_url() == "postgresql+asyncpg://u@h/db"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", "mongodb://h/db")
    with pytest.raises(DatabaseUrlError, match="HEARTBEATS_DATABASE_URL: unsupported"):
        resolve_database_url()


async def test_default_database_is_created_under_dot_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from store import open_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEARTBEATS_DATABASE_URL", raising=False)
    opened = await open_store()
    try:
        await opened.tenants.upsert(tenant="acme")
    finally:
        await opened.close()
    assert (tmp_path / ".data" / "heartbeats.db").is_file()


async def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path) -> None:
    from store import open_store

    opened = await open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        async with opened.engine.connect() as conn:  # reading pragmas needs a raw connection
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 5000
    finally:
        await opened.close()


# ------------------------------------------------------------------------------- tenants


async def test_tenant_upsert_creates_with_defaults_and_changes_only_given_fields(
    store: Store,
) -> None:
    created = await store.tenants.upsert(tenant="acme")
    assert (created.timezone, created.provider, created.model_cheap) == ("UTC", None, None)

    await store.tenants.upsert(tenant="acme", timezone="America/New_York", provider="openai")
    changed = await store.tenants.upsert(tenant="acme", model_premium="big-model")
    assert changed.timezone == "America/New_York"
    assert changed.provider == "openai"
    assert changed.model_premium == "big-model"
    assert changed.created_at == created.created_at
    assert changed.updated_at >= created.updated_at

    assert await store.tenants.get(tenant="acme") == changed
    assert await store.tenants.get(tenant="other") is None
    assert changed.to_json()["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tenant": "Acme"}, "tenant id must be lowercase"),
        ({"tenant": "a:b"}, "tenant id"),
        ({"tenant": "acme", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"tenant": "acme", "timezone": "../etc/passwd"}, "unknown timezone"),
        (
            {"tenant": "acme", "provider": "llama"},
            "provider must be one of anthropic, offline, openai",
        ),
        ({"tenant": "acme", "model_cheap": ""}, "model_cheap must not be empty"),
    ],
)
async def test_tenant_upsert_rejects_bad_input(store: Store, fields: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message) as raised:
        await store.tenants.upsert(**fields)
    assert isinstance(raised.value, ValueError)
    assert await store.tenants.get(tenant="acme") is None


# ---------------------------------------------------------------------------------- apps


async def test_apps_install_update_uninstall_reinstall(store: Store) -> None:
    manifest = {"id": "crm", "agents": [{"id": "bot"}]}
    first = await store.apps.record(
        tenant="acme", app="crm", name="CRM", version="1.0.0", manifest=manifest, manifest_hash="h1"
    )
    updated = await store.apps.record(
        tenant="acme", app="crm", name="CRM", version="1.1.0", manifest=manifest, manifest_hash="h2"
    )
    assert (updated.version, updated.manifest_hash, updated.manifest) == ("1.1.0", "h2", manifest)
    assert updated.installed_at == first.installed_at  # an update is not a new installation

    assert await store.apps.mark_uninstalled(tenant="acme", app="crm") is True
    assert await store.apps.mark_uninstalled(tenant="acme", app="crm") is False
    assert await store.apps.list(tenant="acme") == [] and await store.apps.summaries(tenant="acme") == []
    [listed] = await store.apps.list(tenant="acme", include_uninstalled=True)
    assert listed.status == "uninstalled"

    again = await store.apps.record(
        tenant="acme", app="crm", name="CRM", version="2.0.0", manifest=manifest, manifest_hash="h3"
    )
    assert again.status == "installed"
    assert again.installed_at > first.installed_at
    assert [a.id for a in await store.apps.list(tenant="acme")] == ["crm"]
    [summary] = await store.apps.summaries(tenant="acme")  # what lists show, without the manifest
    [full] = await store.apps.list(tenant="acme")
    assert (summary.id, summary.name, summary.version, summary.installed_at) == (full.id, full.name, full.version,
                                                                                  full.installed_at)
    assert await store.apps.summaries(tenant="acme2") == []


async def test_get_apps_reads_many_apps_in_batches_scoped_to_the_tenant(store: Store) -> None:
    from store.apps import APP_READ_BATCH

    count = APP_READ_BATCH + 3  # more than one batch
    for i in range(count):
        await store.apps.record(tenant="acme", app=f"app{i}", name=f"App {i}", version="1.0.0",
                               manifest={"id": f"app{i}"}, manifest_hash=f"h{i}")
    await store.apps.record(tenant="other", app="app0", name="Theirs", version="9.0.0",
                           manifest={"id": "app0"}, manifest_hash="theirs")
    await store.apps.mark_uninstalled(tenant="acme", app="app1")
    wanted = [f"app{i}" for i in range(count)] + ["app0", "never-installed"]

    found = await store.apps.get_many(tenant="acme", app_ids=wanted)

    assert sorted(found) == sorted(f"app{i}" for i in range(count))  # absent ids left out, repeats once
    assert found["app0"] == await store.apps.get(tenant="acme", app="app0")  # the tenant's own, as get_app reads it
    assert found[f"app{count - 1}"].manifest_hash == f"h{count - 1}"  # the last batch read too
    assert found["app1"].status == "uninstalled"
    assert await store.apps.get_many(tenant="acme", app_ids=[]) == {}
    with pytest.raises(StoreError, match="app id"):
        await store.apps.get_many(tenant="acme", app_ids=["app0", "Bad Id!"])


# ------------------------------------------------------------------ records and filters


async def _seed_typed_values(store: Store) -> None:
    values = {
        "bool_true": True,
        "bool_false": False,
        "int_one": 1,
        "float_one": 1.0,
        "str_one": "1",
        "int_zero": 0,
        "null": None,
        "list_one": [1],
        "object_one": {"v": 1},
        "float_half": 2.5,
        "quoted": 'O\'Brien "the" %_\\',
    }
    for record_id, value in values.items():
        await store.records.put(
            tenant="acme", app="crm", record_type="item", record_id=record_id, data={"v": value}
        )
    await store.records.put(
        tenant="acme", app="crm", record_type="item", record_id="missing", data={}
    )
    # kv-written entries of the same type: non-object values never match a filter.
    await store.kv.set(tenant="acme", app="crm", key="item:scalar", value=1)
    await store.kv.set(tenant="acme", app="crm", key="item:array", value=[{"v": 1}])
    # Same field, other type: must not leak into "item" queries.
    await store.records.put(
        tenant="acme", app="crm", record_type="other", record_id="x", data={"v": 1}
    )


@pytest.mark.parametrize(
    ("filters", "expected_ids"),
    [
        ({"v": 1}, ["float_one", "int_one"]),
        ({"v": 1.0}, ["float_one", "int_one"]),
        ({"v": True}, ["bool_true"]),
        ({"v": False}, ["bool_false"]),
        ({"v": 0}, ["int_zero"]),
        ({"v": "1"}, ["str_one"]),
        ({"v": None}, ["null"]),
        ({"v": 2.5}, ["float_half"]),
        ({"v": 'O\'Brien "the" %_\\'}, ["quoted"]),
        ({"v": "%"}, []),
        ({"absent": None}, []),
    ],
)
async def test_query_records_follows_json_types(
    store: Store, filters: dict, expected_ids: list[str]
) -> None:
    await _seed_typed_values(store)
    found = await store.records.query(
        tenant="acme", app="crm", record_type="item", filters=filters, limit=100
    )
    by_id = {
        r["id"]: r["data"] for r in jsonable(await store.records.list(tenant="acme", app="crm", limit=100))
    }
    assert found == [by_id[record_id] for record_id in sorted(expected_ids)]


async def test_query_records_without_filters_returns_object_records_in_key_order(
    store: Store,
) -> None:
    await _seed_typed_values(store)
    found = await store.records.query(
        tenant="acme", app="crm", record_type="item", filters={}, limit=100
    )
    assert len(found) == 12  # the 11 values + "missing"; kv scalars/arrays are not records
    assert all(isinstance(data, dict) for data in found)


async def test_query_records_combines_filters_with_and(store: Store) -> None:
    for n in range(6):
        data = {"status": "active" if n % 2 else "paused", "tier": n % 3, "n": n}
        await store.records.put(
            tenant="acme", app="crm", record_type="lead", record_id=f"l{n}", data=data
        )
    found = await store.records.query(
        tenant="acme",
        app="crm",
        record_type="lead",
        filters={"status": "active", "tier": 0},
        limit=10,
    )
    assert [d["n"] for d in found] == [3]


@pytest.mark.parametrize(
    "filters",
    [
        {"a.b": 1},
        {"1a": 1},
        {"a-b": 1},
        {"$": 1},
        {"a b": 1},
        {"": 1},
        {"a')--": 1},
        {"v": [1]},
        {"v": {"x": 1}},
        {"v": float("nan")},
        {"v": 2**70},
        {"v": object()},
    ],
)
async def test_query_records_rejects_bad_filters(store: Store, filters: dict) -> None:
    with pytest.raises(ValueError):
        await store.records.query(
            tenant="acme", app="crm", record_type="item", filters=filters, limit=10
        )


async def test_query_records_filters_in_sql_over_many_rows(store: Store) -> None:
    # 1,200 rows, every third active: a LIMIT applied before filtering would return too few.
    for n in range(1200):
        await store.records.put(
            tenant="acme",
            app="crm",
            record_type="lead",
            record_id=f"{n:05d}",
            data={"n": n, "status": "active" if n % 3 == 0 else "cold"},
        )
    first = await store.records.query(
        tenant="acme", app="crm", record_type="lead", filters={"status": "active"}, limit=50
    )
    assert [d["n"] for d in first] == list(range(0, 150, 3))
    every = await store.records.query(
        tenant="acme", app="crm", record_type="lead", filters={"status": "active"}, limit=1000
    )
    assert len(every) == 400
    listed = jsonable(await store.records.list(tenant="acme", app="crm", record_type="lead", limit=1000))
    assert len(listed) == 1000
    assert [r["id"] for r in listed[:3]] == ["00000", "00001", "00002"]


async def test_records_and_kv_are_the_same_rows(store: Store) -> None:
    await store.records.put(
        tenant="acme",
        app="crm",
        record_type="campaign",
        record_id="spring",
        data={"status": "active"},
    )
    assert await store.kv.get(tenant="acme", app="crm", key="campaign:spring") == {
        "status": "active"
    }

    await store.kv.set(
        tenant="acme", app="crm", key="campaign:fall:2025", value={"status": "active"}
    )
    await store.kv.set(tenant="acme", app="crm", key="settings", value={"x": 1})
    record = jsonable(await store.records.get(
        tenant="acme", app="crm", record_type="campaign", record_id="fall:2025"
    ))
    assert record is not None and record["data"] == {"status": "active"}
    found = await store.records.query(
        tenant="acme", app="crm", record_type="campaign", filters={"status": "active"}, limit=10
    )
    assert len(found) == 2
    untyped = jsonable(await store.records.list(tenant="acme", app="crm", record_type=""))
    assert [(r["record_type"], r["id"]) for r in untyped] == [("", "settings")]

    assert await store.records.delete(
        tenant="acme", app="crm", record_type="campaign", record_id="spring"
    )
    assert not await store.records.delete(
        tenant="acme", app="crm", record_type="campaign", record_id="spring"
    )
    assert await store.kv.get(tenant="acme", app="crm", key="campaign:spring") is None


async def test_put_record_replaces_data_and_keeps_created_at(store: Store) -> None:
    await store.records.put(
        tenant="acme", app="crm", record_type="lead", record_id="1", data={"a": 1}
    )
    before = jsonable(await store.records.get(tenant="acme", app="crm", record_type="lead", record_id="1"))
    await store.records.put(
        tenant="acme", app="crm", record_type="lead", record_id="1", data={"b": 2}
    )
    after = jsonable(await store.records.get(tenant="acme", app="crm", record_type="lead", record_id="1"))
    assert after["data"] == {"b": 2}
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] >= before["updated_at"]


@pytest.mark.parametrize(
    ("record_type", "record_id", "data"),
    [
        ("", "x", {}),
        ("a:b", "x", {}),
        ("lead", "", {}),
        ("lead", "x", [1, 2]),
        ("lead", "x", {"n": float("inf")}),
        ("lead", "x", {"n": {1, 2}}),
        ("lead", "x" * 600, {}),
    ],
)
async def test_put_record_rejects_bad_input(
    store: Store, record_type: str, record_id: str, data
) -> None:
    with pytest.raises(StoreError):
        await store.records.put(
            tenant="acme", app="crm", record_type=record_type, record_id=record_id, data=data
        )


# ------------------------------------------------------------------------------------ kv


async def test_kv_round_trips_any_json_value(store: Store) -> None:
    values = [{"a": [1, 2.5, None, True]}, [1, "two"], "text ünïcödé", 42, 1.5, True, False, None]
    for index, value in enumerate(values):
        await store.kv.set(tenant="acme", app="crm", key=f"k:{index}", value=value)
    for index, value in enumerate(values):
        got = await store.kv.get(tenant="acme", app="crm", key=f"k:{index}")
        assert got == value and type(got) is type(value)
    listed = jsonable(await store.kv.list(tenant="acme", app="crm", prefix="k:", include_values=True))
    assert [item["value"] for item in listed] == values

    await store.kv.set(tenant="acme", app="crm", key="k:0", value="replaced")
    assert await store.kv.get(tenant="acme", app="crm", key="k:0") == "replaced"
    assert await store.kv.delete(tenant="acme", app="crm", key="k:0") is True
    assert await store.kv.delete(tenant="acme", app="crm", key="k:0") is False
    assert await store.kv.get(tenant="acme", app="crm", key="k:0") is None


async def test_kv_prefix_matches_literally(store: Store) -> None:
    keys = ["a_b:1", "axb:1", "a%b:1", "aXYb:1", "A_b:1", "a\\b:1", "a_bc:1", "b:1"]
    for key in keys:
        await store.kv.set(tenant="acme", app="crm", key=key, value=key)

    async def listed(prefix: str) -> list[str]:
        return [
            item["key"] for item in jsonable(await store.kv.list(tenant="acme", app="crm", prefix=prefix))
        ]

    assert await listed("a_b") == ["a_b:1", "a_bc:1"]  # '_' is not "any character"
    assert await listed("a_b:") == ["a_b:1"]
    assert await listed("a%") == ["a%b:1"]  # '%' is not "anything"
    assert await listed("a\\") == ["a\\b:1"]
    assert await listed("A") == ["A_b:1"]  # case-sensitive on both backends
    assert await listed("") == sorted(keys)
    assert await listed("zz") == []


async def test_kv_list_limit_order_and_values_flag(store: Store) -> None:
    for n in (3, 1, 2):
        await store.kv.set(tenant="acme", app="crm", key=f"lead:{n}", value={"n": n})
    assert jsonable(await store.kv.list(tenant="acme", app="crm", prefix="lead:", limit=2)) == [
        {"key": "lead:1"},
        {"key": "lead:2"},
    ]
    assert jsonable(await store.kv.list(
        tenant="acme", app="crm", prefix="lead:", limit=1, include_values=True
    )) == [{"key": "lead:1", "value": {"n": 1}}]
    with pytest.raises(StoreError, match="limit"):
        jsonable(await store.kv.list(tenant="acme", app="crm", limit=0))


# ------------------------------------------------------------------------ tenant isolation


async def test_tenants_and_apps_with_shared_prefixes_never_see_each_other(store: Store) -> None:
    # 'acme' is a prefix of 'acme2' and 'crm' of 'crm2': a LIKE or key-prefix bug would leak.
    owners = [("acme", "crm"), ("acme", "crm2"), ("acme2", "crm"), ("acme2", "crm2")]
    for tenant, app in owners:
        tag = f"{tenant}/{app}"
        await store.records.put(
            tenant=tenant, app=app, record_type="lead", record_id="1", data={"owner": tag, "s": "a"}
        )
        await store.kv.set(tenant=tenant, app=app, key="cfg", value=tag)
        await store.memory.add(tenant=tenant, app=app, agent="bot", kind="note", content=tag)
        await store.receipts.add(
            tenant=tenant,
            heartbeat_id=f"heartbeat:{tenant}:{app}:bot:daily",
            tick_id="t1",
            at=T0,
            trigger="schedule",
            outcome="skipped",
            reason=tag[:64],
        )

    for tenant, app in owners:
        tag = f"{tenant}/{app}"
        records = jsonable(await store.records.list(tenant=tenant, app=app, record_type="lead"))
        assert [r["data"]["owner"] for r in records] == [tag]
        queried = await store.records.query(
            tenant=tenant, app=app, record_type="lead", filters={"s": "a"}, limit=10
        )
        assert [d["owner"] for d in queried] == [tag]
        assert await store.kv.get(tenant=tenant, app=app, key="cfg") == tag
        kv = jsonable(await store.kv.list(tenant=tenant, app=app, include_values=True))
        assert [item["value"] for item in kv] == [tag, {"owner": tag, "s": "a"}]
        memory = jsonable(await store.memory.query(tenant=tenant, app=app, agent="bot", now=T0))
        assert [m["content"] for m in memory] == [tag]
        receipts = jsonable(await store.receipts.list(
            tenant=tenant, heartbeat_id=f"heartbeat:{tenant}:{app}:bot:daily"
        ))
        assert [r["reason"] for r in receipts] == [tag]

    # Deleting in one place leaves the look-alikes alone.
    assert await store.kv.delete(tenant="acme", app="crm", key="cfg")
    assert await store.kv.get(tenant="acme", app="crm2", key="cfg") == "acme/crm2"
    assert await store.kv.get(tenant="acme2", app="crm", key="cfg") == "acme2/crm"


async def test_conversations_are_per_tenant(store: Store) -> None:
    mine = await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="dedicated")
    theirs = await store.conversations.id_for(tenant="acme2", app="crm", agent="bot", mode="dedicated")
    assert mine != theirs
    await store.conversations.append(tenant="acme", conversation_id=mine, role="user", content="hello")

    with pytest.raises(NotFoundError):
        await store.conversations.append(
            tenant="acme2", conversation_id=mine, role="user", content="sneak"
        )
    assert jsonable(await store.conversations.messages(tenant="acme2", conversation_id=mine)) == []
    assert [
        m["content"] for m in jsonable(await store.conversations.messages(tenant="acme", conversation_id=mine))
    ] == ["hello"]


async def test_receipts_cannot_be_written_for_another_tenants_heartbeat(store: Store) -> None:
    with pytest.raises(StoreError, match="does not belong to tenant 'acme'"):
        await store.receipts.add(
            tenant="acme",
            heartbeat_id="heartbeat:acme2:crm:bot:daily",
            tick_id="t1",
            at=T0,
            trigger="schedule",
            outcome="skipped",
        )


# -------------------------------------------------------------------------------- memory


async def test_memory_excludes_expired_and_is_newest_first(store: Store) -> None:
    ids = []
    for content, expires in [("old", None), ("expired", T0), ("fresh", T0 + timedelta(hours=1))]:
        ids.append(
            await store.memory.add(
                tenant="acme",
                app="crm",
                agent="bot",
                kind="note",
                content=content,
                expires_at=expires,
            )
        )
    await store.memory.add(
        tenant="acme",
        app="crm",
        agent="bot",
        kind="commitment",
        content="follow up",
        data={"lead": "42"},
        due_at=T0 + timedelta(days=1),
    )
    await store.memory.add(tenant="acme", app="crm", agent="other", kind="note", content="not mine")

    at_t0 = jsonable(await store.memory.query(tenant="acme", app="crm", agent="bot", kind="note", now=T0))
    # expires_at == now counts as expired.
    assert [m["content"] for m in at_t0] == ["fresh", "old"]
    later = jsonable(await store.memory.query(
        tenant="acme", app="crm", agent="bot", kind="note", now=T0 + timedelta(hours=2)
    ))
    assert [m["content"] for m in later] == ["old"]

    every_kind = jsonable(await store.memory.query(tenant="acme", app="crm", agent="bot", now=T0, limit=2))
    assert [m["content"] for m in every_kind] == ["follow up", "fresh"]
    assert every_kind[0]["data"] == {"lead": "42"}
    assert every_kind[0]["due_at"] == "2025-03-02T09:00:00Z"
    assert every_kind[1]["data"] is None
    assert every_kind[1]["expires_at"] == "2025-03-01T10:00:00Z"


async def test_memory_rejects_naive_datetimes(store: Store) -> None:
    with pytest.raises(StoreError, match="timezone-aware"):
        await store.memory.add(
            tenant="acme",
            app="crm",
            agent="bot",
            kind="note",
            content="x",
            due_at=datetime(2025, 1, 1),
        )
    with pytest.raises(StoreError, match="timezone-aware"):
        jsonable(await store.memory.query(tenant="acme", app="crm", agent="bot", now=datetime(2025, 1, 1)))


# ------------------------------------------------------------------------- conversations


async def test_conversation_id_is_stable_per_agent_and_mode(store: Store) -> None:
    first = await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="dedicated")
    assert (
        await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="dedicated")
        == first
    )
    main = await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="main")
    other_agent = await store.conversations.id_for(
        tenant="acme", app="crm", agent="bot2", mode="dedicated"
    )
    assert len({first, main, other_agent}) == 3
    with pytest.raises(StoreError, match="conversation mode"):
        await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="side")


async def test_concurrent_conversation_creation_yields_one_id(store: Store) -> None:
    ids = await asyncio.gather(
        *(
            store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="main")
            for _ in range(5)
        )
    )
    assert len(set(ids)) == 1


async def test_list_messages_returns_the_newest_oldest_first(store: Store) -> None:
    conversation = await store.conversations.id_for(tenant="acme", app="crm", agent="bot", mode="main")
    for n in range(5):
        await store.conversations.append(
            tenant="acme", conversation_id=conversation, role="user", content=f"m{n}"
        )
    recent = jsonable(await store.conversations.messages(tenant="acme", conversation_id=conversation, limit=3))
    assert [m["content"] for m in recent] == ["m2", "m3", "m4"]
    assert all(m["created_at"].endswith("Z") for m in recent)


# ------------------------------------------------------------------------------ receipts

HEARTBEAT = "heartbeat:acme:crm:bot:daily"


def _receipt(**overrides) -> dict:
    fields = {
        "tenant": "acme",
        "heartbeat_id": HEARTBEAT,
        "tick_id": "t1",
        "at": T0,
        "trigger": "schedule",
        "outcome": "substantive",
        "rows": 3,
        "escalated": True,
        "provider": "offline",
        "model": "echo",
        "tokens_in": 120,
        "tokens_out": 30,
        "duration_ms": 850,
    }
    return fields | overrides


async def test_receipts_are_idempotent_per_tick(store: Store) -> None:
    assert await store.receipts.add(**_receipt()) is True
    # An activity retry writes the same tick again, perhaps with other values: the first one stays.
    assert await store.receipts.add(**_receipt(outcome="failed", error="boom")) is False
    [only] = jsonable(await store.receipts.list(tenant="acme", heartbeat_id=HEARTBEAT))
    assert only == {
        "tick_id": "t1",
        "at": "2025-03-01T09:00:00Z",
        "trigger": "schedule",
        "outcome": "substantive",
        "reason": None,
        "rows": 3,
        "escalated": True,
        "provider": "offline",
        "model": "echo",
        "tokens_in": 120,
        "tokens_out": 30,
        "duration_ms": 850,
        "error": None,
        "reply": None,
        "cases": 0,
        "duplicates": 0,
        "forced": False,
        "usd": None,  # no LLM call in the ledger for this tick
    }


async def test_receipts_carry_the_ticks_cost_from_the_ledger(store: Store) -> None:
    from contract.budget import SpendEntry, nano_usd

    def call(key: str, model: str = "gpt-5-mini") -> SpendEntry:
        return SpendEntry(tenant="acme", app="sales", agent="outreach", workflow_id=HEARTBEAT, purpose="tick",
                          call_key=key, provider="openai", model=model, local_day="2025-03-01", local_month="2025-03")

    for key, cost in ((f"{HEARTBEAT}/t1/0", "0.25"), (f"{HEARTBEAT}/t1/0/1/delegate", "0.5"),
                      (f"{HEARTBEAT}/t11/0", "7"), (f"{HEARTBEAT}/t2/0", None)):
        await store.spend.settle(call(key), tokens_in=1, tokens_out=1, cache_read_tokens=0, cache_write_tokens=0,
                                 cost_nano=None if cost is None else nano_usd(cost))
    for tick in ("t1", "t2", "t3"):
        await store.receipts.add(**_receipt(tick_id=tick))
    found = {r.tick_id: r.to_json()["usd"] for r in await store.receipts.list(tenant="acme", heartbeat_id=HEARTBEAT)}
    # t1: its own calls only (not t11's); t2: a call without a price; t3: no call at all.
    assert found == {"t1": "0.750000", "t2": None, "t3": None}


async def test_receipts_list_newest_first_with_limit(store: Store) -> None:
    # Written out of order: the order comes from `at`, not from insertion.
    for minutes in (10, 0, 30, 20):
        await store.receipts.add(
            **_receipt(tick_id=f"t{minutes}", at=T0 + timedelta(minutes=minutes), outcome="skipped")
        )
    listed = jsonable(await store.receipts.list(tenant="acme", heartbeat_id=HEARTBEAT, limit=3))
    assert [r["tick_id"] for r in listed] == ["t30", "t20", "t10"]
    assert listed[0]["at"] == "2025-03-01T09:30:00Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"heartbeat_id": "acme:crm:bot:daily"}, "heartbeat id must look like"),
        ({"heartbeat_id": "heartbeat:acme:crm:bot"}, "heartbeat id must look like"),
        ({"outcome": "great"}, "outcome must be one of"),
        ({"at": datetime(2025, 3, 1, 9)}, "at must be timezone-aware"),
        ({"rows": -1}, "rows must be a non-negative integer"),
        ({"heartbeat_id": "heartbeat:other:crm:bot:daily"}, "does not belong to tenant 'acme'"),
    ],
)
async def test_receipts_reject_bad_input(store: Store, overrides: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        await store.receipts.add(**_receipt(**overrides))


# ----------------------------------------------------------------------------- datetimes


async def test_datetimes_come_back_aware_utc_whatever_zone_went_in(store: Store) -> None:
    plus_five = timezone(timedelta(hours=5))
    await store.memory.add(
        tenant="acme",
        app="crm",
        agent="bot",
        kind="note",
        content="x",
        due_at=datetime(2025, 3, 1, 14, 0, tzinfo=plus_five),
    )
    [entry] = jsonable(await store.memory.query(tenant="acme", app="crm", agent="bot", now=T0))
    assert entry["due_at"] == "2025-03-01T09:00:00Z"

    tenant = await store.tenants.upsert(tenant="acme")
    assert tenant.created_at.tzinfo is not None
    assert tenant.created_at.utcoffset() == timedelta(0)
    app = await store.apps.record(
        tenant="acme", app="crm", name="CRM", version="1", manifest={}, manifest_hash="h"
    )
    assert app.installed_at.utcoffset() == timedelta(0)


def test_utc_datetime_type_refuses_naive_values() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    column_type = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2025, 1, 1), sqlite.dialect())
    aware = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert column_type.process_bind_param(aware, sqlite.dialect()) == datetime(2025, 1, 1, 10)
    assert column_type.process_bind_param(aware, postgresql.dialect()) == datetime(
        2025, 1, 1, 10, tzinfo=UTC
    )
    assert column_type.process_result_value(datetime(2025, 1, 1, 10), sqlite.dialect()) == datetime(
        2025, 1, 1, 10, tzinfo=UTC
    )


async def test_sqlite_and_postgres_agree_on_stored_instant(
    store: Store, database: Database
) -> None:
    # The raw column holds the UTC instant, not the writer's wall-clock time.
    await store.receipts.add(
        **_receipt(at=datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=3))))
    )
    async with store.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT at FROM receipts"))).scalar_one()
    if database.backend == "sqlite":
        assert str(raw).startswith("2025-03-01 09:00:00")
    else:
        assert raw == datetime(2025, 3, 1, 9, tzinfo=UTC)


async def test_tenants_are_listed_by_id(store):
    for tenant in ("acme2", "acme", "beta"):
        await store.tenants.upsert(tenant=tenant, timezone="UTC")
    assert [tenant.id for tenant in await store.tenants.list()] == ["acme", "acme2", "beta"]
    assert [tenant.id for tenant in await store.tenants.list(limit=1)] == ["acme"]

"""Manifest sync (`heartbeats install / uninstall / sync`).

Pure parts first: the diff of an installed app against a new manifest, validation that is
all-or-nothing, the refusal of non-LOW pre-filter tools. Then `apply_plan` on a real dev server
(one for the module), its calls observed through a real client interceptor: which calls are made,
what they leave on the server, and that the app is recorded only after they all succeed. The
end-to-end test through the CLI with a worker is at the bottom.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from client import install, sync
from client import temporal as temporal_calls
from client.checks import LoadedManifest, load_manifests
from client.install import installed_hash, manifest_json, plan_install
from client.sync import Limiter, uninstall_app
from contract.errors import HeartbeatsError
from contract.heartbeat import HeartbeatConfig, HeartbeatInput, HeartbeatStatusView
from manifest.loader import parse_manifest
from runtime import workflows as entity_workflows
from store import Store, open_store
from tests.temporal_env import CallRecorder, recording_client
from tests.temporal_env import free_port as closed_port  # a port nothing listens on

TENANT = "acme"


def manifest_yaml(app: str = "sales", agents: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """A manifest with the given agents -> heartbeats (each a dict of overrides; None drops a field)."""
    agents = agents if agents is not None else {"outreach": [{"slug": "daily_cadence"}]}
    lines = [f"id: {app}", f"name: {app} app", "version: 1.0.0", "agents:"]
    for agent, heartbeats in agents.items():
        lines += [f"  - id: {agent}", "    system_prompt: You work.", "    heartbeats:" if heartbeats else ""]
        for heartbeat in heartbeats:
            spec = {
                "skill": "_internal_app_records",
                "tool": "query",
                "params": {"record_type": "campaign"},
                "interval_minutes": 60,
                **heartbeat,
            }
            first = True
            for key, value in spec.items():
                if value is None:  # None: leave the field out
                    continue
                prefix = "      - " if first else "        "
                lines.append(f"{prefix}{key}: {json.dumps(value)}")
                first = False
    return "\n".join(line for line in lines if line) + "\n"


def manifest(app: str = "sales", agents: dict[str, list[dict[str, Any]]] | None = None):
    return parse_manifest(manifest_yaml(app, agents))


def installed_app(source, *, tenant_timezone: str = "UTC", status: str = "installed", tenant: str = TENANT):
    """A store App record as `apply_plan` would have written it for `source`."""
    from datetime import UTC, datetime

    from store import App

    stored = manifest_json(source)
    now = datetime.now(UTC)
    return App(
        tenant=tenant, id=source.id, name=source.display_name, version=source.version, manifest=stored,
        manifest_hash=installed_hash(stored, tenant_timezone), status=status, installed_at=now, updated_at=now,
    )  # fmt: skip


def wid(app: str, agent: str, slug: str, tenant: str = TENANT) -> str:
    return f"heartbeat:{tenant}:{app}:{agent}:{slug}"


def ids(configs) -> list[str]:
    return [config.workflow_id for config in configs]


# ------------------------------------------------------------------------------------ the diff


def test_a_new_app_starts_every_heartbeat_in_manifest_order() -> None:
    new = manifest(agents={"a": [{"slug": "one"}, {"slug": "two"}], "b": [{"slug": "three"}]})
    plan = plan_install(new, tenant=TENANT, tenant_timezone="Europe/Berlin", installed=None)
    assert ids(plan.start) == [wid("sales", "a", "one"), wid("sales", "a", "two"), wid("sales", "b", "three")]
    assert plan.reconfigure == plan.unchanged == plan.cancel == []
    assert not plan.app_unchanged
    assert {config.tenant_timezone for config in plan.start} == {"Europe/Berlin"}
    assert plan.manifest_hash == installed_hash(manifest_json(new), "Europe/Berlin")


def test_the_same_manifest_and_timezone_is_an_unchanged_app() -> None:
    source = manifest(agents={"a": [{"slug": "one"}, {"slug": "two"}]})
    plan = plan_install(source, tenant=TENANT, tenant_timezone="UTC", installed=installed_app(source))
    assert plan.app_unchanged
    assert ids(plan.unchanged) == [wid("sales", "a", "one"), wid("sales", "a", "two")]
    assert plan.start == plan.reconfigure == plan.cancel == []
    assert install.planned_calls(plan) == 0


def test_yaml_formatting_and_shorthand_do_not_count_as_changes() -> None:
    long_form = parse_manifest(manifest_yaml(agents={"a": [{"slug": "one", "cooldown_seconds": 3600}]}))
    shorthand = parse_manifest(
        "# a comment\n" + manifest_yaml(agents={"a": [{"slug": "one", "cooldown_minutes": 60}]})
    )
    plan = plan_install(shorthand, tenant=TENANT, tenant_timezone="UTC", installed=installed_app(long_form))
    assert plan.app_unchanged


def test_changed_added_and_removed_heartbeats() -> None:
    old = manifest(agents={"a": [{"slug": "keep"}, {"slug": "change"}, {"slug": "drop"}], "gone": [{"slug": "x"}]})
    new = manifest(agents={"a": [{"slug": "keep"}, {"slug": "change", "interval_minutes": 15}, {"slug": "add"}]})
    plan = plan_install(new, tenant=TENANT, tenant_timezone="UTC", installed=installed_app(old))
    assert not plan.app_unchanged
    assert ids(plan.unchanged) == [wid("sales", "a", "keep")]
    assert ids(plan.reconfigure) == [wid("sales", "a", "change")]
    assert ids(plan.start) == [wid("sales", "a", "add")]
    # The removed agent's vision loop ends with its heartbeats.
    assert plan.cancel == [wid("sales", "a", "drop"), wid("sales", "gone", "x"), "vision:acme:sales:gone"]
    assert install.planned_calls(plan) == 5


def test_a_changed_agent_prompt_changes_the_app_but_no_heartbeat() -> None:
    old = manifest()
    new = parse_manifest(manifest_yaml().replace("You work.", "You work harder."))
    plan = plan_install(new, tenant=TENANT, tenant_timezone="UTC", installed=installed_app(old))
    assert not plan.app_unchanged  # the app is recorded again (agents read their prompt from it)
    assert ids(plan.unchanged) == [wid("sales", "outreach", "daily_cadence")]
    assert plan.start == plan.reconfigure == plan.cancel == []


def test_a_tenant_that_moved_timezone_reconfigures_every_kept_heartbeat() -> None:
    source = manifest(agents={"a": [{"slug": "one"}, {"slug": "two"}]})
    installed = installed_app(source, tenant_timezone="UTC")
    plan = plan_install(source, tenant=TENANT, tenant_timezone="Asia/Tokyo", installed=installed)
    assert not plan.app_unchanged
    assert ids(plan.reconfigure) == [wid("sales", "a", "one"), wid("sales", "a", "two")]
    assert {config.tenant_timezone for config in plan.reconfigure} == {"Asia/Tokyo"}
    assert plan.start == plan.unchanged == plan.cancel == []


def test_an_uninstalled_app_is_installed_afresh() -> None:
    source = manifest()
    plan = plan_install(source, tenant=TENANT, tenant_timezone="UTC", installed=installed_app(source, status="uninstalled"))
    assert ids(plan.start) == [wid("sales", "outreach", "daily_cadence")]
    assert not plan.app_unchanged and plan.cancel == []


def test_a_stored_manifest_that_no_longer_validates_restarts_everything() -> None:
    source = manifest()
    installed = installed_app(source)
    broken = replace(installed, manifest={**installed.manifest, "unknown_field": 1}, manifest_hash="sha256:old")
    plan = plan_install(source, tenant=TENANT, tenant_timezone="UTC", installed=broken)
    # Signal-with-start is safe either way: it starts a missing workflow, reconfigures a running one.
    assert ids(plan.start) == [wid("sales", "outreach", "daily_cadence")]
    assert plan.cancel == []


def test_start_arguments_carry_every_search_attribute_and_a_summary() -> None:
    config = plan_install(manifest(), tenant=TENANT, tenant_timezone="UTC", installed=None).start[0]
    attributes = {pair.key.name: pair.value for pair in entity_workflows.search_attributes(config)}
    assert attributes == {
        "HeartbeatTenant": TENANT, "HeartbeatApp": "sales", "HeartbeatAgent": "outreach",
        "HeartbeatSlug": "daily_cadence", "HeartbeatStatus": "active", "HeartbeatFailureCount": 0,
    }  # fmt: skip
    assert entity_workflows.static_summary(config) == "sales/outreach/daily_cadence: every 60 min"


# ------------------------------------------------------------------------------ validation


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_of_every_file_is_listed_with_its_place(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", manifest_yaml("good"))
    bad = write(tmp_path, "bad.yaml", manifest_yaml("bad", {"a": [{"slug": "one", "interval_minutes": 1}]}))
    worse = write(tmp_path, "worse.yaml", "id: Worse\nagents: []\n")
    with pytest.raises(HeartbeatsError) as caught:
        load_manifests([good, bad, worse])
    message = str(caught.value)
    assert message.startswith("nothing installed: 3 problems")
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: agents\[0\]\.heartbeats\[0\]\.interval_minutes: ", message, re.M)
    assert re.search(rf"^{re.escape(str(worse))}:1:5: id: ", message, re.M)
    assert re.search(rf"^{re.escape(str(worse))}:2:\d+: agents: ", message, re.M)


def test_two_files_of_one_app_are_refused(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", manifest_yaml("sales"))
    second = write(tmp_path, "b.yaml", manifest_yaml("sales"))
    with pytest.raises(HeartbeatsError, match=r"b\.yaml:1:1: id: app 'sales' is also defined in .*a\.yaml"):
        load_manifests([first, second])


def test_pre_filter_tools_that_are_not_low_risk_are_refused_by_heartbeat_path(tmp_path: Path) -> None:
    agents = {
        "a": [
            {"slug": "ok", "skill": "kv", "tool": "list", "params": {}},
            {"slug": "writes", "skill": "kv", "tool": "set", "params": {}},
        ],
        "b": [{"slug": "mails", "skill": "email", "tool": "send", "params": {}}],
    }
    path = write(tmp_path, "risky.yaml", manifest_yaml("risky", agents))
    with pytest.raises(HeartbeatsError) as caught:
        load_manifests([path])
    message = str(caught.value)
    lines = path.read_text().splitlines()
    for where, reason, skill in (("agents[0].heartbeats[1].skill", "kv.set is MEDIUM risk", "kv"),
                                 ("agents[1].heartbeats[0].skill", "email.send is HIGH risk", "email")):
        found = re.search(rf"{re.escape(str(path))}:(\d+):(\d+): {re.escape(where)}: {re.escape(reason)}", message)
        assert found, message
        assert lines[int(found[1]) - 1].lstrip(" -") == f'skill: "{skill}"'  # that heartbeat's skill line
    assert "heartbeats[0].skill: kv" not in message.replace("agents[1].heartbeats[0]", "")
    assert message.startswith("nothing installed: 2 problems")


def test_agent_tools_must_name_registered_skills(tmp_path: Path) -> None:
    text = manifest_yaml("x", {"a": [{"slug": "s"}]}).replace("- id: a\n", "- id: a\n    tools: [records, crm_sync]\n", 1)
    path = write(tmp_path, "x.yaml", text)
    with pytest.raises(HeartbeatsError, match=r"x\.yaml:\d+:\d+: agents\[0\]\.tools\[1\]: no skill 'crm_sync' is registered"):
        load_manifests([path])


async def test_an_interval_that_never_fires_for_the_tenant_is_refused(tmp_path: Path) -> None:
    # A daily grid sits at 00:00-00:10 UTC for every tenant (salt < 600 s): in the tenant's zone
    # that is never inside 12:00-13:00 for a UTC tenant, and 12:0x for one on UTC+12.
    heartbeat = {"slug": "noon", "interval_minutes": 1440, "active_hours": {"start": "12:00", "end": "13:00"}}
    path = write(tmp_path, "x.yaml", manifest_yaml("x", {"a": [heartbeat]}))
    store = await open_store(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        await store.tenants.upsert(tenant="demo", timezone="UTC")
        with pytest.raises(HeartbeatsError, match=r"x\.yaml:\d+:\d+: agents\[0\]\.heartbeats\[0\]\.active_hours: "
                                            r"for tenant 'demo' \(UTC\) no due time .* would never fire"):
            await sync.plan_manifests(store, load_manifests([path]), tenant="demo")
        await store.tenants.upsert(tenant="kamchatka", timezone="Asia/Kamchatka")
        [plan] = await sync.plan_manifests(store, load_manifests([path]), tenant="kamchatka")
        assert [config.workflow_id for config in plan.start] == ["heartbeat:kamchatka:x:a:noon"]
    finally:
        await store.close()


def test_unknown_skill_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", manifest_yaml("x", {"a": [{"slug": "s", "skill": "nope", "tool": "q", "params": {}}]}))
    with pytest.raises(HeartbeatsError, match=r"agents\[0\]\.heartbeats\[0\]\.skill: unknown skill 'nope'"):
        load_manifests([path])


def test_low_risk_and_internal_pre_filters_are_accepted(tmp_path: Path) -> None:
    agents = {"a": [{"slug": "k", "skill": "kv", "tool": "get", "params": {"key": "x"}}, {"slug": "r"}]}
    loaded = load_manifests([write(tmp_path, "fine.yaml", manifest_yaml("fine", agents))])
    assert [item.manifest.id for item in loaded] == ["fine"]


# ----------------------------------------------------------------------- CLI, no Temporal



@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tmp database and a Temporal address nobody listens on: any Temporal call would fail."""
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    return url


def invoke(*args: str) -> Result:
    from cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


async def stored_apps(url: str, tenant: str = TENANT) -> list[Any]:
    store = await open_store(url)
    try:
        return await store.apps.list(tenant=tenant, include_uninstalled=True)
    finally:
        await store.close()


def create_tenant(tenant: str = TENANT) -> None:
    assert invoke("tenant", "set", tenant, "--timezone", "Europe/Berlin").exit_code == 0


def test_install_of_an_invalid_manifest_fails_on_validation_before_temporal(offline: str, tmp_path: Path) -> None:
    create_tenant()
    path = write(tmp_path, "bad.yaml", manifest_yaml("bad", {"a": [{"slug": "one", "interval_minutes": 2}]}))
    result = invoke("install", str(path), "--tenant", TENANT)
    assert result.exit_code == 1
    assert "nothing installed: 1 problem" in result.output
    assert f"{path}:" in result.output and "interval_minutes" in result.output
    assert "cannot reach Temporal" not in result.output  # validation came first: no Temporal call
    assert asyncio.run(stored_apps(offline)) == []


def test_install_of_a_risky_pre_filter_fails_before_temporal(offline: str, tmp_path: Path) -> None:
    create_tenant()
    path = write(tmp_path, "r.yaml", manifest_yaml("r", {"a": [{"slug": "m", "skill": "email", "tool": "send", "params": {}}]}))
    result = invoke("install", str(path), "--tenant", TENANT)
    assert result.exit_code == 1
    assert "agents[0].heartbeats[0].skill: email.send is HIGH risk" in result.output
    assert "cannot reach Temporal" not in result.output
    assert asyncio.run(stored_apps(offline)) == []


def test_install_for_an_unknown_tenant_says_how_to_create_it(offline: str, tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", manifest_yaml())
    result = invoke("install", str(path), "--tenant", "nobody")
    assert result.exit_code == 1
    assert "unknown tenant 'nobody'; create it first: heartbeats tenant set nobody" in result.output
    assert "cannot reach Temporal" not in result.output


def test_install_with_temporal_down_is_a_clean_error_and_records_nothing(offline: str, tmp_path: Path) -> None:
    create_tenant()
    result = invoke("install", str(write(tmp_path, "ok.yaml", manifest_yaml())), "--tenant", TENANT)
    assert result.exit_code == 1
    assert "cannot reach Temporal at 127.0.0.1:" in result.output
    assert asyncio.run(stored_apps(offline)) == []


def test_sync_with_one_invalid_manifest_applies_nothing(offline: str, tmp_path: Path) -> None:
    create_tenant()
    folder = tmp_path / "apps"
    folder.mkdir()
    write(folder, "good.yaml", manifest_yaml("good"))
    write(folder, "bad.yml", "id: bad\nagents: [{id: a, heartbeats: [{slug: s}]}]\n")
    result = invoke("sync", str(folder), "--tenant", TENANT)
    assert result.exit_code == 1
    assert "nothing installed:" in result.output and "bad.yml:2:" in result.output
    assert "cannot reach Temporal" not in result.output
    assert asyncio.run(stored_apps(offline)) == []


def test_sync_of_an_empty_folder_is_refused(offline: str, tmp_path: Path) -> None:
    create_tenant()
    (tmp_path / "empty").mkdir()
    result = invoke("sync", str(tmp_path / "empty"), "--tenant", TENANT)
    assert result.exit_code == 1 and "no manifests (*.yaml, *.yml) in" in result.output
    assert "cannot reach Temporal" not in result.output


def test_bad_tenant_and_app_ids_are_refused(offline: str, tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", manifest_yaml())
    assert "--tenant" in invoke("install", str(path), "--tenant", "Bad Tenant").output
    assert invoke("uninstall", "Sales!", "--tenant", TENANT).exit_code == 1


def test_commands_are_registered_with_examples_and_temporal_equivalents() -> None:
    for name in ("install", "uninstall", "sync"):
        result = invoke(name, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output and "temporal workflow" in result.output


# ------------------------------------------------------------- apply_plan, real Temporal, recorded
#
# One dev server for the whole module; every test has its own tenant (so its own workflow ids and
# visibility queries) and its own store. The sync client's calls go through a real client
# interceptor (tests/temporal_env.CallRecorder) that records (kind, workflow id or query); what
# they did is checked on the server with a plain client. Workflows run without a worker unless a
# test needs them to act on a signal or a cancellation.

WEEKLY = {"schedule_type": "weekly", "time_of_day": "03:00", "day_of_week": 6, "interval_minutes": None}


def quiet_manifest(app: str = "sales", agents: dict[str, list[str | dict[str, Any]]] | None = None):
    """A manifest of weekly heartbeats (Sunday 03:00 UTC): no tick fires while a test runs."""
    agents = agents if agents is not None else {"outreach": ["daily_cadence"]}
    return manifest(
        app,
        {
            agent: [{**WEEKLY, **({"slug": hb} if isinstance(hb, str) else hb)} for hb in heartbeats]
            for agent, heartbeats in agents.items()
        },
    )


@pytest.fixture(scope="module")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    from tests.temporal_env import dev_server

    async with dev_server(tmp_path_factory.mktemp("temporal")) as (client, _address):
        yield client


@dataclass
class Installer:
    """One test's side of the shared server: its tenant, its store, and the recorded client."""

    client: Client  # plain: the test's own calls and checks, not recorded
    recorded: Client  # what the sync client is given: every call goes through `recorder`
    recorder: CallRecorder
    store: Store
    tenant: str
    by_hand: set[str] = field(default_factory=set)  # workflows the test started itself

    def wid(self, app: str, agent: str, slug: str) -> str:
        return wid(app, agent, slug, tenant=self.tenant)

    def config(self, app: str, agent: str, slug: str) -> HeartbeatConfig:
        source = quiet_manifest(app, {agent: [slug]})
        return install.entity_configs(source, tenant=self.tenant, tenant_timezone="UTC")[0]

    async def install(self, source) -> install.InstallResult:
        loaded = [LoadedManifest(Path(f"{source.id}.yaml"), source)]
        return (await sync.install_manifests(self.recorded, self.store, loaded, tenant=self.tenant))[0]

    async def start_by_hand(self, config: HeartbeatConfig, *, app_attributes: bool = True) -> str:
        """Start a heartbeat's workflow outside the sync client, with or without the app's attributes."""
        from temporalio.common import SearchAttributePair, TypedSearchAttributes

        from contract.search_attributes import SA_APP, SA_TENANT

        attributes = TypedSearchAttributes(
            [SearchAttributePair(SA_TENANT, config.tenant), SearchAttributePair(SA_APP, config.app)]
        )
        self.by_hand.add(config.workflow_id)
        handle = await self.client.start_workflow(
            "HeartbeatWorkflow", HeartbeatInput(config=config), id=config.workflow_id,
            task_queue="heartbeats", search_attributes=attributes if app_attributes else None,
        )  # fmt: skip
        return handle.result_run_id or ""

    async def terminate(self, workflow_id: str) -> None:
        await self.client.get_workflow_handle(workflow_id).terminate(reason="by hand, in a test")

    async def describe(self, workflow_id: str) -> Any:
        return await self.client.get_workflow_handle(workflow_id).describe()

    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """The latest run's status; None when the server has never seen the id."""
        try:
            return (await self.describe(workflow_id)).status
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    def running_query(self, app: str) -> str:
        return f'HeartbeatTenant="{self.tenant}" AND HeartbeatApp="{app}" AND ExecutionStatus="Running"'

    async def listed(self, app: str) -> dict[str, dict[str, Any]]:
        """The app's running workflows as visibility lists them: id -> heartbeat search attributes."""
        return {
            execution.id: heartbeat_attributes(execution.typed_search_attributes)
            async for execution in self.client.list_workflows(self.running_query(app))
        }

    async def visible(self, app: str, count: int) -> None:
        """Wait until visibility counts exactly `count` running workflows of the app."""
        query = self.running_query(app)
        counted = await until(lambda: self.client.count_workflows(query), lambda c: c.count == count)
        assert counted.count == count

    async def reconfigure_signals(self, workflow_id: str) -> list[HeartbeatConfig]:
        """The configs of the `reconfigure` signals in the latest run's history, in order."""
        configs: list[HeartbeatConfig] = []
        for event in (await self.client.get_workflow_handle(workflow_id).fetch_history()).events:
            if event.HasField("workflow_execution_signaled_event_attributes"):
                signal = event.workflow_execution_signaled_event_attributes
                if signal.signal_name == "reconfigure":
                    configs += await self.client.data_converter.decode(signal.input.payloads, [HeartbeatConfig])
        return configs

    async def start_input(self, workflow_id: str) -> HeartbeatInput:
        """The input the latest run was started with, as the server stored it."""
        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (value,) = await self.client.data_converter.decode(started.input.payloads, [HeartbeatInput])
        return value

    async def cancel_requested(self, workflow_id: str) -> bool:
        from temporalio.api.enums.v1 import EventType

        history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED for e in history.events)

    def touched(self) -> set[str]:
        """Every workflow id or query the sync client made a call about since the last `clear`."""
        return {target for _, target in self.recorder.calls}


def heartbeat_attributes(attributes: Any) -> dict[str, Any]:
    return {pair.key.name: pair.value for pair in attributes if pair.key.name.startswith("Heartbeat")}


async def until(fetch, done=bool, *, timeout: float = 15.0):
    """Await `fetch()` until `done(value)` or the timeout; the last value either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await fetch()
        if done(value) or loop.time() > deadline:
            return value
        await asyncio.sleep(0.05)


@pytest.fixture
async def env(temporal: Client, tmp_path: Path) -> AsyncIterator[Installer]:
    recorder = CallRecorder()
    store = await open_store(f"sqlite:///{tmp_path / 'apply.db'}")
    tenant = f"t{secrets.token_hex(6)}"
    await store.tenants.upsert(tenant=tenant, timezone="UTC")
    installer = Installer(temporal, recording_client(temporal, recorder), recorder, store, tenant)
    try:
        yield installer
    finally:
        # Leave nothing running: another test's worker would pick these workflows up.
        async def stop(workflow_id: str) -> None:
            with contextlib.suppress(RPCError):  # never started, or closed already
                await installer.terminate(workflow_id)

        await asyncio.gather(*(stop(w) for w in recorder.ever_started | installer.by_hand))
        await store.close()


async def test_first_install_signal_with_starts_each_heartbeat_then_records_the_app(env: Installer) -> None:
    from temporalio.common import WorkflowIDReusePolicy

    source = quiet_manifest(agents={"a": ["one", "two"]})
    one, two = env.wid("sales", "a", "one"), env.wid("sales", "a", "two")
    result = await env.install(source)
    assert result.started == [one, two]
    assert result.unchanged == result.reconfigured == result.cancelled == result.repaired == []
    assert env.recorder.kinds() == ["list", "start", "start"]  # the orphan check, one signal-with-start each
    assert sorted(env.recorder.ids("start")) == [one, two]
    for workflow_id, slug in ((one, "one"), (two, "two")):
        call = env.recorder.start_inputs[workflow_id]
        (arg,) = call.args
        assert call.workflow == "HeartbeatWorkflow" and call.task_queue == "heartbeats"
        assert isinstance(arg, HeartbeatInput) and arg.config.workflow_id == workflow_id
        assert call.start_signal == "reconfigure" and list(call.start_signal_args) == [arg.config]
        assert call.id_reuse_policy == WorkflowIDReusePolicy.ALLOW_DUPLICATE
        # What the server made of it: a running workflow with that input, attributes and summary,
        # and the config delivered as a `reconfigure` signal in the same history.
        described = await env.describe(workflow_id)
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert described.workflow_type == "HeartbeatWorkflow" and described.task_queue == "heartbeats"
        assert heartbeat_attributes(described.typed_search_attributes) == {
            "HeartbeatTenant": env.tenant, "HeartbeatApp": "sales", "HeartbeatAgent": "a",
            "HeartbeatSlug": slug, "HeartbeatStatus": "active", "HeartbeatFailureCount": 0,
        }  # fmt: skip
        assert await described.static_summary() == f"sales/a/{slug}: weekly Sun 03:00"
        assert await env.start_input(workflow_id) == arg
        assert await env.reconfigure_signals(workflow_id) == [arg.config]
    # Visibility finds them by the app's attributes.
    listed = await until(lambda: env.listed("sales"), lambda found: len(found) == 2)
    assert sorted(listed) == [one, two]
    assert listed[two]["HeartbeatSlug"] == "two" and listed[two]["HeartbeatAgent"] == "a"
    app = await env.store.apps.get(tenant=env.tenant, app="sales")
    assert app is not None and app.status == "installed"
    assert app.manifest == manifest_json(source)
    assert app.manifest_hash == installed_hash(manifest_json(source), "UTC")


async def test_reinstalling_an_unchanged_app_makes_one_count_query_and_no_writes(env: Installer) -> None:
    source = quiet_manifest(agents={"a": ["one", "two"]})
    one, two = env.wid("sales", "a", "one"), env.wid("sales", "a", "two")
    await env.install(source)
    await env.visible("sales", 2)
    before = {w: (d.run_id, d.history_length) for w in (one, two) if (d := await env.describe(w))}
    env.recorder.clear()
    result = await env.install(source)
    assert env.recorder.kinds() == ["count"]
    query = env.recorder.calls[0][1]
    assert f'HeartbeatTenant="{env.tenant}" AND HeartbeatApp="sales"' in query
    assert 'ExecutionStatus="Running"' in query
    assert result.app_unchanged and not result.changed
    assert result.unchanged == [one, two]
    assert result.to_json() == {
        "app": "sales", "tenant": env.tenant, "started": [], "reconfigured": [],
        "unchanged": [one, two], "cancelled": [], "repaired": [],
    }  # fmt: skip
    # Nothing was written: same runs, no new history event (a signal would add one).
    assert {w: (d.run_id, d.history_length) for w in (one, two) if (d := await env.describe(w))} == before


async def test_an_unchanged_app_with_a_workflow_terminated_by_hand_is_repaired(env: Installer) -> None:
    source = quiet_manifest(agents={"a": ["one", "two"]})
    one, two = env.wid("sales", "a", "one"), env.wid("sales", "a", "two")
    await env.install(source)
    await env.visible("sales", 2)
    one_run, two_run = (await env.describe(one)).run_id, (await env.describe(two)).run_id
    await env.terminate(two)
    await env.visible("sales", 1)
    env.recorder.clear()
    result = await env.install(source)
    # The count is short; the listing names the missing one; describe confirms it is not running.
    assert env.recorder.kinds() == ["count", "list", "describe", "start"]
    assert env.recorder.ids("describe") == env.recorder.ids("start") == [two]
    assert result.repaired == result.started == [two]
    assert result.unchanged == [one]
    assert (await env.describe(one)).run_id == one_run
    restarted = await env.describe(two)
    assert restarted.status == WorkflowExecutionStatus.RUNNING and restarted.run_id != two_run
    await env.visible("sales", 2)


# Visibility lag itself (a workflow just started that the count and the listing do not show yet)
# cannot be produced on demand on a real server. The sync client cannot tell it from this real
# situation, produced deterministically: the heartbeat's workflow runs, but without the app's
# search attributes, so the visibility queries miss it and only describe finds it.
async def test_a_running_workflow_that_visibility_does_not_list_is_not_started_again(env: Installer) -> None:
    source = quiet_manifest(agents={"a": ["one", "two"]})
    one, two = env.wid("sales", "a", "one"), env.wid("sales", "a", "two")
    await env.install(source)
    await env.visible("sales", 2)
    await env.terminate(two)
    hidden_run = await env.start_by_hand(env.config("sales", "a", "two"), app_attributes=False)
    await env.visible("sales", 1)
    hidden = await env.describe(two)
    env.recorder.clear()
    result = await env.install(source)
    assert env.recorder.kinds() == ["count", "list", "describe"]  # reads only
    assert env.recorder.ids("describe") == [two]
    assert result.repaired == result.started == []
    assert result.unchanged == [one, two]
    untouched = await env.describe(two)
    assert (untouched.run_id, untouched.history_length) == (hidden_run, hidden.history_length)


async def test_changes_reconfigure_start_and_cancel(env: Installer) -> None:
    from tests.temporal_env import running_worker

    keep, change, drop = (env.wid("sales", "a", slug) for slug in ("keep", "change", "drop"))
    add, zombie = env.wid("sales", "a", "add"), env.wid("sales", "zombie", "x")
    await env.install(quiet_manifest(agents={"a": ["keep", "change", "drop"]}))
    await env.start_by_hand(env.config("sales", "zombie", "x"))  # the app's attributes, in no manifest
    await until(lambda: env.listed("sales"), lambda found: zombie in found)
    runs = {w: (await env.describe(w)).run_id for w in (keep, change)}
    new = quiet_manifest(agents={"a": ["keep", {"slug": "change", "time_of_day": "04:30"}, "add"]})
    env.recorder.clear()
    async with running_worker(env.client, env.store):  # so that the cancellations take effect
        result = await env.install(new)
        assert result.started == [add]
        assert result.reconfigured == [change]
        assert result.unchanged == [keep]
        assert result.cancelled == [drop, zombie]
        assert sorted(env.recorder.ids("start")) == [add, change]
        assert sorted(env.recorder.ids("cancel")) == [drop, zombie]
        assert keep not in env.touched()
        # The changed heartbeat got its new config as a signal to the same run, and uses it. (A
        # signal that arrives while the worker holds a workflow task enters history after it.)
        signalled = await until(lambda: env.reconfigure_signals(change), lambda found: len(found) == 2)
        assert len(signalled) == 2 and signalled[-1].heartbeat == new.agents[0].heartbeats[1]
        assert (await env.describe(change)).run_id == runs[change]
        view = await until(
            lambda: env.client.get_workflow_handle(change).query("status", result_type=HeartbeatStatusView),
            lambda status: status.next_run is not None and status.next_run.endswith("T04:30:00Z"),
        )
        assert view.next_run.endswith("T04:30:00Z"), view
        for workflow_id in (drop, zombie):
            status = await until(lambda w=workflow_id: env.status(w), lambda s: s == WorkflowExecutionStatus.CANCELED)
            assert status == WorkflowExecutionStatus.CANCELED, workflow_id
        for workflow_id in (keep, change, add):
            assert await env.status(workflow_id) == WorkflowExecutionStatus.RUNNING, workflow_id
        assert (await env.describe(keep)).run_id == runs[keep]
    stored = await env.store.apps.get(tenant=env.tenant, app="sales")
    assert stored is not None and stored.manifest == manifest_json(new)


async def test_the_app_is_recorded_only_after_every_temporal_call_succeeded(env: Installer) -> None:
    one, two = env.wid("sales", "a", "one"), env.wid("sales", "a", "two")
    old = quiet_manifest(agents={"a": ["one"]})
    env.recorder.fail_start = one
    with pytest.raises(RPCError, match="injected failure"):
        await env.install(old)
    assert await env.store.apps.get(tenant=env.tenant, app="sales") is None  # a failed first install
    env.recorder.fail_start = None
    await env.install(old)

    new = quiet_manifest(agents={"a": ["one", "two"]})
    env.recorder.fail_start = two
    with pytest.raises(RPCError, match="injected failure"):
        await env.install(new)
    stored = await env.store.apps.get(tenant=env.tenant, app="sales")
    assert stored is not None and stored.manifest == manifest_json(old)  # so a retry plans the same changes
    assert await env.status(two) is None  # the failed start never reached the server

    env.recorder.fail_start = None
    env.recorder.clear()
    retry = await env.install(new)
    assert retry.started == [two] and retry.unchanged == [one]
    assert env.recorder.kinds() == ["list", "start"] and env.recorder.ids("start") == [two]
    assert await env.status(two) == WorkflowExecutionStatus.RUNNING
    stored = await env.store.apps.get(tenant=env.tenant, app="sales")
    assert stored is not None and stored.manifest == manifest_json(new)


async def test_uninstall_cancels_listed_and_manifest_workflows_but_not_another_apps(env: Installer) -> None:
    from tests.temporal_env import running_worker

    source = quiet_manifest(agents={"a": ["one", "two", "three"]})
    one, two, three = (env.wid("sales", "a", slug) for slug in ("one", "two", "three"))
    stray, other = env.wid("sales", "b", "stray"), env.wid("other", "a", "one")
    await env.install(source)
    await env.install(quiet_manifest("other", {"a": ["one"]}))
    await env.terminate(two)  # already closed: cancelling it again is no error
    # Running but in no listing: cancelled because the stored manifest names it.
    await env.terminate(three)
    await env.start_by_hand(env.config("sales", "a", "three"), app_attributes=False)
    # Listed with the app's attributes but in no manifest: cancelled because visibility lists it.
    await env.start_by_hand(env.config("sales", "b", "stray"))
    await until(lambda: env.listed("sales"), lambda found: stray in found)
    before = {w: (await env.describe(w)).run_id for w in (one, two, three)}
    env.recorder.clear()
    async with running_worker(env.client, env.store):
        result = await uninstall_app(env.recorded, env.store, tenant=env.tenant, app="sales")
        # `two` had closed already: it is neither cancelled again nor reported.
        assert result.cancelled == [one, three, stray]
        assert sorted(env.recorder.ids("cancel")) == sorted([one, three, stray])
        assert other not in env.touched()
        for workflow_id in (one, three, stray):
            status = await until(lambda w=workflow_id: env.status(w), lambda s: s == WorkflowExecutionStatus.CANCELED)
            assert status == WorkflowExecutionStatus.CANCELED, workflow_id
        assert await env.status(other) == WorkflowExecutionStatus.RUNNING
        stored = await env.store.apps.get(tenant=env.tenant, app="sales")
        assert stored is not None and stored.status == "uninstalled"
        with pytest.raises(HeartbeatsError, match=f"app 'nope' is not installed for tenant '{env.tenant}'"):
            await uninstall_app(env.recorded, env.store, tenant=env.tenant, app="nope")

        # Installing again after an uninstall starts everything afresh: new runs. (Once visibility
        # has seen the cancellations: a closed workflow it still listed would be cancelled again.)
        await env.visible("sales", 0)
        again = await env.install(source)
        assert again.started == [one, two, three] and again.cancelled == []
        for workflow_id, old_run in before.items():
            described = await env.describe(workflow_id)
            assert described.status == WorkflowExecutionStatus.RUNNING and described.run_id != old_run


async def test_uninstall_ends_the_apps_vision_loops_and_not_another_apps(env: Installer) -> None:
    """A vision loop still waiting on an escalation would make premium calls after its app is gone.
    Found by the stored manifest's agents and by visibility (an agent removed long ago); an app whose
    id shares a prefix (`sales2`) keeps its own."""
    from contract.names import SIGNAL_ESCALATE, vision_workflow_id
    from contract.vision import VisionInput
    from tests.temporal_env import running_worker

    await env.install(quiet_manifest(agents={"a": ["one"]}))
    await env.install(quiet_manifest("sales2", {"a": ["one"]}))
    loops = {agent_app: vision_workflow_id(env.tenant, agent_app[1], agent_app[0])
             for agent_app in (("a", "sales"), ("gone", "sales"), ("a", "sales2"))}
    for (agent, app), workflow_id in loops.items():
        env.by_hand.add(workflow_id)
        await env.client.start_workflow(
            "VisionWorkflow", VisionInput(tenant=env.tenant, app=app, agent=agent), id=workflow_id,
            task_queue="heartbeats", start_signal=SIGNAL_ESCALATE, start_signal_args=["off pace"])
    query = temporal_calls.vision_query(env.tenant, "sales")
    await until(lambda: temporal_calls.running_ids(env.client, query), lambda ids: len(ids) == 2)
    async with running_worker(env.client, env.store):
        result = await uninstall_app(env.recorded, env.store, tenant=env.tenant, app="sales")
        ended = [loops["a", "sales"], loops["gone", "sales"]]
        assert set(ended) <= set(result.cancelled)
        for workflow_id in ended:
            status = await until(lambda w=workflow_id: env.status(w), lambda s: s == WorkflowExecutionStatus.CANCELED)
            assert status == WorkflowExecutionStatus.CANCELED, workflow_id
    assert await env.status(loops["a", "sales2"]) == WorkflowExecutionStatus.RUNNING


# The server answers a cancel request for a workflow that is already closed with success (NotFound
# only for an id it never saw: temporalio/api#183). Uninstall must neither cancel such a workflow
# again nor report it as cancelled. (A fake client answering NOT_FOUND once hid this.)
async def test_uninstall_does_not_report_a_workflow_that_had_ended_as_cancelled(env: Installer) -> None:
    one = env.wid("sales", "a", "one")
    await env.install(quiet_manifest(agents={"a": ["one"]}))
    await env.terminate(one)
    result = await uninstall_app(env.recorded, env.store, tenant=env.tenant, app="sales")
    assert env.recorder.ids("cancel") == []
    assert await env.status(one) == WorkflowExecutionStatus.TERMINATED
    assert result.cancelled == []


async def test_sync_uninstalls_apps_missing_from_the_folder(env: Installer) -> None:
    alpha, beta = env.wid("alpha", "outreach", "daily_cadence"), env.wid("beta", "outreach", "daily_cadence")
    loaded = [
        LoadedManifest(Path("alpha.yaml"), quiet_manifest("alpha")),
        LoadedManifest(Path("beta.yaml"), quiet_manifest("beta")),
    ]
    first, none_removed = await sync.sync_folder(env.recorded, env.store, loaded, tenant=env.tenant)
    assert [(r.app, r.started) for r in first] == [("alpha", [alpha]), ("beta", [beta])] and none_removed == []
    env.recorder.clear()
    installed, removed = await sync.sync_folder(env.recorded, env.store, loaded[:1], tenant=env.tenant)
    assert [r.app for r in installed] == ["alpha"] and installed[0].app_unchanged and installed[0].repaired == []
    assert [(r.app, r.cancelled) for r in removed] == [("beta", [beta])]
    assert env.recorder.ids("cancel") == [beta] and env.recorder.ids("start") == []
    assert await env.cancel_requested(beta) and not await env.cancel_requested(alpha)
    assert [app.id for app in await env.store.apps.list(tenant=env.tenant)] == ["alpha"]


async def test_many_heartbeats_run_concurrently_but_bounded(env: Installer) -> None:
    count = 150
    done: list[int] = []
    progress_total: list[int] = []

    def progress(total: int):
        progress_total.append(total)
        return done.append

    loaded = [LoadedManifest(Path("big.yaml"), quiet_manifest("big", {"a": [f"h{i:03d}" for i in range(count)]}))]
    results = await sync.install_manifests(env.recorded, env.store, loaded, tenant=env.tenant, progress=progress)
    assert len(results[0].started) == count
    assert sorted(env.recorder.ids("start")) == sorted(results[0].started)
    assert 1 < env.recorder.max_in_flight_starts <= sync.CONCURRENCY
    assert progress_total == [count] and sum(done) == count
    await env.visible("big", count)


async def test_many_small_apps_are_applied_concurrently_and_all_recorded(env: Installer) -> None:
    # 12 apps of 3 heartbeats: one app at a time could never have more than 3 starts in flight.
    apps = [f"app{i:02d}" for i in range(12)]
    loaded = [LoadedManifest(Path(f"{app}.yaml"), quiet_manifest(app, {"a": ["x", "y", "z"]})) for app in apps]
    results = await sync.install_manifests(env.recorded, env.store, loaded, tenant=env.tenant)
    assert [r.app for r in results] == apps  # results keep the manifests' order
    assert all(len(r.started) == 3 for r in results)
    assert 3 < env.recorder.max_in_flight_starts <= sync.CONCURRENCY
    recorded = {app.id for app in await env.store.apps.list(tenant=env.tenant)}
    assert set(apps) <= recorded
    removed = await sync.uninstall_apps(env.recorded, env.store, tenant=env.tenant, apps=apps)
    assert [len(r.cancelled) for r in removed] == [3] * 12
    assert {app.id for app in await env.store.apps.list(tenant=env.tenant)} == recorded - set(apps)


async def test_resyncing_many_unchanged_apps_counts_them_together_and_repairs_what_is_missing(env: Installer) -> None:
    apps = ["alpha", "beta", "gamma"]
    loaded = [LoadedManifest(Path(f"{app}.yaml"), quiet_manifest(app, {"a": ["x", "y"]})) for app in apps]
    await sync.install_manifests(env.recorded, env.store, loaded, tenant=env.tenant)
    for app in apps:
        await env.visible(app, 2)
    env.recorder.clear()
    again = await sync.install_manifests(env.recorded, env.store, loaded, tenant=env.tenant)
    # One count for the three apps instead of one each; nothing written.
    assert env.recorder.kinds() == ["count"]
    assert env.recorder.calls[0][1].endswith('AND HeartbeatApp IN ("alpha", "beta", "gamma")')
    assert all(r.app_unchanged and r.repaired == [] for r in again)

    gone = env.wid("beta", "a", "y")
    await env.terminate(gone)
    await env.visible("beta", 1)
    env.recorder.clear()
    repaired = await sync.install_manifests(env.recorded, env.store, loaded, tenant=env.tenant)
    # The shared count is short, so each app is counted; only beta lists, confirms and restarts.
    assert sorted(env.recorder.kinds()) == ["count"] * 4 + ["describe", "list", "start"]
    assert env.recorder.ids("start") == env.recorder.ids("describe") == [gone]
    assert [r.repaired for r in repaired] == [[], [gone], []]


async def test_limiter_surfaces_the_first_error_itself() -> None:
    async def fail() -> None:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        await Limiter(2).run([fail, fail])


# ------------------------------------------------------------------- end to end, real Temporal


def temporal_cli(address: str, *args: str) -> Any:
    import subprocess
    import sys

    binary = str(Path(sys.executable).parent / "temporal")
    return subprocess.run([binary, *args, "--address", address], capture_output=True, text=True, timeout=60)


def listed_workflows(address: str, query: str) -> list[dict[str, Any]]:
    result = temporal_cli(address, "workflow", "list", "--query", query, "--output", "json")
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


async def eventually(check, *, timeout: float = 15.0):
    """Poll `check()` (sync, run in a thread) until it returns something truthy."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


def search_attribute_values(workflow: dict[str, Any]) -> dict[str, Any]:
    """Decoded search attributes of one `temporal workflow list -o json` entry."""
    import base64

    fields = workflow.get("searchAttributes", {}).get("indexedFields", {})
    return {name: json.loads(base64.b64decode(payload["data"])) for name, payload in fields.items()}


async def test_install_reinstall_change_remove_and_uninstall_on_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("workflows.heartbeat")
    from temporalio.client import WorkflowExecutionStatus

    from tests.temporal_env import dev_server, running_worker

    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    store = await open_store(url)
    await store.tenants.upsert(tenant=TENANT, timezone="Europe/Berlin")
    weekly = {"schedule_type": "weekly", "time_of_day": "03:00", "day_of_week": 6, "interval_minutes": None}  # no tick fires during the test
    agents = {"outreach": [{"slug": "daily_cadence", **weekly}, {"slug": "follow_up", **weekly}],
              "scout": [{"slug": "scan", **weekly}]}  # fmt: skip
    path = write(tmp_path, "sales.yaml", manifest_yaml("sales", agents))
    every = [wid("sales", "outreach", "daily_cadence"), wid("sales", "outreach", "follow_up"), wid("sales", "scout", "scan")]
    app_running = f'HeartbeatTenant="{TENANT}" AND HeartbeatApp="sales" AND ExecutionStatus="Running"'
    try:
        async with dev_server(tmp_path) as (client, address), running_worker(client, store):
            monkeypatch.setenv("TEMPORAL_ADDRESS", address)

            # Install: one running workflow per heartbeat, visible with its search attributes.
            first = await asyncio.to_thread(invoke, "install", str(path), "--tenant", TENANT, "--json")
            assert first.exit_code == 0, first.output
            assert json.loads(first.output) == {"app": "sales", "tenant": TENANT, "started": every, "reconfigured": [],
                                                "unchanged": [], "cancelled": [], "repaired": []}  # fmt: skip
            listed = await eventually(lambda: len(found := listed_workflows(address, app_running)) == 3 and found)
            assert sorted(w["execution"]["workflowId"] for w in listed) == every
            attributes = {w["execution"]["workflowId"]: search_attribute_values(w) for w in listed}
            scan = attributes[wid("sales", "scout", "scan")]
            scan.pop("BuildIds", None)  # the server's own, when present
            assert scan == {
                "HeartbeatTenant": TENANT, "HeartbeatApp": "sales", "HeartbeatAgent": "scout", "HeartbeatSlug": "scan",
                "HeartbeatStatus": "active", "HeartbeatFailureCount": 0,
            }  # fmt: skip
            described = await client.get_workflow_handle(every[0]).describe()
            run_id = described.run_id
            assert await described.static_summary() == "sales/outreach/daily_cadence: weekly Sun 03:00"
            stored = await store.apps.get(tenant=TENANT, app="sales")
            assert stored is not None and stored.status == "installed"

            # Re-install unchanged: nothing changes, and it says so.
            again = await asyncio.to_thread(invoke, "install", str(path), "--tenant", TENANT)
            assert again.exit_code == 0, again.output
            assert "app sales is unchanged for tenant acme: nothing changed (3 heartbeats running)" in again.output
            again_json = json.loads((await asyncio.to_thread(invoke, "install", str(path), "--tenant", TENANT, "--json")).output)
            assert again_json["unchanged"] == every and again_json["started"] == again_json["reconfigured"] == []

            # A changed schedule is reconfigured in place (same run); a removed heartbeat is cancelled.
            agents["outreach"] = [{"slug": "daily_cadence", **weekly, "time_of_day": "04:30"}]
            write(tmp_path, "sales.yaml", manifest_yaml("sales", agents))
            changed = await asyncio.to_thread(invoke, "install", str(path), "--tenant", TENANT, "--json")
            assert changed.exit_code == 0, changed.output
            assert json.loads(changed.output) == {
                "app": "sales", "tenant": TENANT, "started": [], "reconfigured": [every[0]],
                "unchanged": [every[2]], "cancelled": [every[1]], "repaired": [],
            }  # fmt: skip
            handle = client.get_workflow_handle(every[0])
            assert (await handle.describe()).run_id == run_id
            status = await handle.query("status", result_type=HeartbeatStatusView)
            assert status.next_run.endswith("T02:30:00Z") or status.next_run.endswith("T03:30:00Z")  # 04:30 Berlin
            removed = client.get_workflow_handle(every[1])
            for _ in range(50):
                if (await removed.describe()).status == WorkflowExecutionStatus.CANCELED:
                    break
                await asyncio.sleep(0.1)
            assert (await removed.describe()).status == WorkflowExecutionStatus.CANCELED

            # Uninstall: none of the app's workflows keeps running.
            gone = await asyncio.to_thread(invoke, "uninstall", "sales", "--tenant", TENANT)
            assert gone.exit_code == 0, gone.output
            assert "uninstalled app sales for tenant acme: 2 workflows cancelled" in gone.output
            for workflow_id in (every[0], every[2]):
                for _ in range(50):
                    if (await client.get_workflow_handle(workflow_id).describe()).status != WorkflowExecutionStatus.RUNNING:
                        break
                    await asyncio.sleep(0.1)
            assert await eventually(lambda: listed_workflows(address, app_running) == [])
            stored = await store.apps.get(tenant=TENANT, app="sales")
            assert stored is not None and stored.status == "uninstalled"
            unknown = await asyncio.to_thread(invoke, "uninstall", "nope", "--tenant", TENANT)
            assert unknown.exit_code == 1 and "app 'nope' is not installed for tenant 'acme'" in unknown.output

            # sync DIR: installs the folder's apps, then uninstalls the ones no longer in it.
            folder = tmp_path / "apps"
            folder.mkdir()
            write(folder, "sales.yaml", manifest_yaml("sales", agents))
            write(folder, "scouting.yaml", manifest_yaml("scouting", {"scout": [{"slug": "scan", **weekly}]}))
            synced = await asyncio.to_thread(invoke, "sync", str(folder), "--tenant", TENANT, "--json")
            assert synced.exit_code == 0, synced.output
            report = json.loads(synced.output)
            assert [(a["app"], a["started"]) for a in report["apps"]] == [
                ("sales", [every[0], every[2]]), ("scouting", [wid("scouting", "scout", "scan")])]
            assert report["uninstalled"] == []
            (folder / "scouting.yaml").unlink()
            resynced = await asyncio.to_thread(invoke, "sync", str(folder), "--tenant", TENANT)
            assert resynced.exit_code == 0, resynced.output
            assert "app sales is unchanged for tenant acme: nothing changed (2 heartbeats running)" in resynced.output
            assert f"app scouting has no manifest in {folder} any more:" in resynced.output
            assert "uninstalled app scouting for tenant acme: 1 workflow cancelled" in resynced.output
            assert [app.id for app in await store.apps.list(tenant=TENANT)] == ["sales"]
    finally:
        await store.close()

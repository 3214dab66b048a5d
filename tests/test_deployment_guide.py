"""docs/deployment.md, run: every `sh` block of the guide, in order, against a dev server and PostgreSQL.

Conventions of the guide (an HTML comment on the line before a block):
- `<!-- guide: settings -->`: the site's settings. Its `export` lines of SITE_VARIABLES get the test's
  values (the dev server, a scratch PostgreSQL database, a temporary profile file, a free port, the
  loopback provider's key); the other lines run as written (the API token is generated). The
  variables it exports are the environment of every later block.
- `<!-- guide: background -->`: each line is a long-running process (a worker, the HTTP server),
  started in order, waited for until it serves, and stopped (SIGTERM) at the end; each must exit 0.
- any other `sh` block runs whole in `bash -euo pipefail` and must exit 0.
Blocks in other languages (`toml`, `nginx`, `sql`) are configuration, checked here where they can be:
the TOML profiles load with the SDK's own loader.

Beyond exit codes the test checks what the commands did: the namespace holds the search attributes of
contract.search_attributes, the store is migrated on PostgreSQL, each worker polls its own task queue,
the run-now tick leaves a receipt whose model call reached the provider, and the server answers
/v1/health with the token (401 without) and marks the session cookie Secure behind HTTPS.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import postgres_admin_url
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.envconfig import ClientConfigProfile

from contract.names import LLM_TASK_QUEUE, TASK_QUEUE
from contract.search_attributes import SEARCH_ATTRIBUTE_TYPES
from drills.provider_server import ProviderServer, text_reply
from drills.rig import free_port
from tests.temporal_env import dev_server

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "deployment.md"
BIN = Path(sys.executable).parent
SITE_VARIABLES = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_CONFIG_FILE", "HEARTBEATS_DATABASE_URL",
                  "ANTHROPIC_API_KEY", "HEARTBEATS_API_PORT"}
HEARTBEAT_ID = "heartbeat:acme:marketing:cmo:hourly_kpi"
MARK = re.compile(r"<!--\s*guide:\s*([a-z-]+)\s*-->")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    mark: str | None
    line: int  # of the opening fence, for messages


def guide_blocks() -> list[Block]:
    blocks, lines = [], GUIDE.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\S*)\s*$", lines[index])
        if not opening or not opening.group(1):
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        mark = MARK.search(before)
        blocks.append(Block(opening.group(1), "\n".join(lines[index + 1:end]) + "\n", mark.group(1) if mark else None,
                            index + 1))
        index = end + 1
    return blocks


def shell_blocks() -> list[Block]:
    return [block for block in guide_blocks() if block.language == "sh"]


def commands(block: Block) -> list[str]:
    """The block's commands, one per line (continuations joined, comments and blanks dropped)."""
    joined = block.text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


# ------------------------------------------------------------------------------------- the guide's shape


def test_the_guide_marks_its_blocks():
    blocks = shell_blocks()
    assert blocks[0].mark == "settings", "the first sh block holds the settings"
    assert {block.mark for block in blocks} <= {"settings", "background", None}
    assert [block.mark for block in blocks].count("settings") == 1
    exported = [re.match(r"export (\w+)=", line) for line in commands(blocks[0])]
    assert all(exported), "the settings block only exports"
    assert {m.group(1) for m in exported if m} == SITE_VARIABLES | {"HEARTBEATS_API_TOKEN", "HEARTBEATS_API_TEMPORAL_UI_URL"}
    languages = {block.language for block in guide_blocks()}
    assert languages == {"sh", "toml", "sql", "nginx"}


def test_the_guide_creates_every_search_attribute_with_its_type():
    text = next(block.text for block in shell_blocks() if "search-attribute create" in block.text)
    created = dict(re.findall(r"--name (\w+) --type (\w+)", text))
    assert created == dict(SEARCH_ATTRIBUTE_TYPES)


def test_the_guide_profiles_load_with_the_sdk():
    toml = next(block.text for block in guide_blocks() if block.language == "toml")
    cloud = ClientConfigProfile.load("cloud", config_source=toml, disable_env=True, config_file_strict=True)
    assert cloud.address.endswith(".tmprl.cloud:7233") and cloud.api_key
    assert cloud.to_client_connect_config()["tls"] is True  # an API key turns TLS on
    mtls = ClientConfigProfile.load("mtls", config_source=toml, disable_env=True, config_file_strict=True)
    assert mtls.tls is not None and mtls.tls.disabled is not True
    assert mtls.tls.client_cert is not None and mtls.tls.client_private_key is not None
    assert mtls.tls.server_root_ca_cert is not None


def test_the_nginx_site_proxies_to_the_port_of_the_settings():
    nginx = next(block.text for block in guide_blocks() if block.language == "nginx")
    settings = dict(re.findall(r"export (\w+)=(\S+)", shell_blocks()[0].text))
    assert f"proxy_pass http://127.0.0.1:{settings['HEARTBEATS_API_PORT']};" in nginx
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx


# ------------------------------------------------------------------------------------------- running it


def site_values(tmp_path: Path, address: str, database_url: str, provider: ProviderServer) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "heartbeats-guide",
            "TEMPORAL_CONFIG_FILE": str(tmp_path / "temporal.toml"), "HEARTBEATS_DATABASE_URL": database_url,
            "ANTHROPIC_API_KEY": provider.api_key or "", "HEARTBEATS_API_PORT": str(free_port())}


def base_environment(provider: ProviderServer) -> dict[str, str]:
    """This process's environment without any setting of ours or Temporal's, the venv first on PATH,
    and the providers pointed at the loopback (the guide leaves the base URL to the provider's default)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TEMPORAL_", "HEARTBEATS_", "ANTHROPIC_", "OPENAI_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANTHROPIC_BASE_URL"] = provider.anthropic_base_url
    return env


def run_settings(block: Block, env: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """Run the settings block with the test's site values; the environment it leaves."""
    lines = []
    for line in commands(block):
        name = re.match(r"export (\w+)=", line).group(1)  # type: ignore[union-attr]
        lines.append(f"export {name}={shlex.quote(values[name])}" if name in values else line)
    script = "\n".join([*lines, "env -0"])
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, env=env, cwd=REPO,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    exported = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    assert len(exported["HEARTBEATS_API_TOKEN"]) >= 40
    return exported


def run_block(block: Block, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=180)
    assert done.returncode == 0, f"docs/deployment.md:{block.line}:\n{block.text}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Background:
    command: str
    process: subprocess.Popen[bytes]
    log: Path


def start(command: str, env: dict[str, str], log: Path) -> Background:
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], env=env, cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT)
    return Background(command, process, log)


def poller_pids(env: dict[str, str], queue: str, kind: str) -> set[int]:
    done = subprocess.run([str(BIN / "temporal"), "task-queue", "describe", "--task-queue", queue,
                           "--task-queue-type", kind, "-o", "json"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return {int(poller["identity"].split("@")[0]) for poller in json.loads(done.stdout).get("pollers") or []}


def wait_until(check, what: str, process: Background | None = None, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"{process.command} exited {process.process.returncode}:\n{process.log.read_text()}")
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def wait_ready(background: Background, env: dict[str, str]) -> None:
    """Until the process serves: a worker polls its queue, the HTTP server answers."""
    pid = background.process.pid
    if background.command == "heartbeats worker --role workflows":
        wait_until(lambda: pid in poller_pids(env, TASK_QUEUE, "workflow"), "the workflows worker", background)
    elif background.command == "heartbeats worker --role llm":
        wait_until(lambda: pid in poller_pids(env, LLM_TASK_QUEUE, "activity"), "the llm worker", background)
    elif background.command == "heartbeats serve":
        url = f"http://127.0.0.1:{env['HEARTBEATS_API_PORT']}/v1/health"

        def answers() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 401
            except httpx.TransportError:
                return False

        wait_until(answers, "the HTTP server", background)
    else:
        raise AssertionError(f"no readiness check for the background command {background.command!r}")


async def test_every_command_of_the_guide_runs(tmp_path: Path):
    admin_url = await postgres_admin_url()
    database = f"hb_guide_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    database_url = f"{admin_url.rsplit('/', 1)[0]}/{database}"
    background: list[Background] = []
    try:
        with ProviderServer(api_key=f"sk-ant-guide-{secrets.token_hex(8)}",
                            fallback=text_reply("HEARTBEAT_OK")) as provider:
            async with dev_server(tmp_path) as (client, address):
                values = site_values(tmp_path, address, database_url, provider)
                await asyncio.to_thread(
                    run_guide, tmp_path, base_environment(provider), values, background)
                await check_results(client, values, database_url, provider)
    finally:
        for process in background:
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait(timeout=30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def run_guide(tmp_path: Path, env: dict[str, str], values: dict[str, str], background: list[Background]) -> None:
    blocks = shell_blocks()
    env = run_settings(blocks[0], env, values)
    outputs: dict[str, str] = {}
    for block in blocks[1:]:
        if block.mark == "background":
            for command in commands(block):
                started = start(command, env, tmp_path / f"background-{len(background)}.log")
                background.append(started)
                wait_ready(started, env)
            continue
        outputs[block.text] = run_block(block, env)
        if "heartbeats run-now" in block.text:
            # The guide's later blocks read the run: it completes through both workers first.
            wait_until(lambda: json.loads(run_block(Block("sh", f"heartbeats runs {HEARTBEAT_ID} --json\n", None, 0),
                                                    env)), "the run-now receipt")
    check_outputs(outputs, env, background)
    for process in reversed(background):  # graceful stops: each exits 0
        process.process.send_signal(signal.SIGTERM)
        process.process.wait(timeout=30)
        assert process.process.returncode == 0, f"{process.command}:\n{process.log.read_text()}"


def check_outputs(outputs: dict[str, str], env: dict[str, str], background: list[Background]) -> None:
    by_command = {process.command: process.process.pid for process in background}
    described = next(out for text, out in outputs.items() if "task-queue describe" in text)
    assert f"{by_command['heartbeats worker --role workflows']}@" in described
    assert f"{by_command['heartbeats worker --role llm']}@" in described
    listed = next(out for text, out in outputs.items() if "search-attribute list" in text)
    for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
        assert re.search(rf"\b{name}\s+{kind}\b", listed), name
    health = next(out for text, out in outputs.items() if "/v1/health" in text)
    answer, refused, *run = health.splitlines()
    assert (json.loads(answer), refused) == ({"ok": True}, "401")
    assert "run_now" in "\n".join(run) and "suppressed" in "\n".join(run)
    cookie = next(out for text, out in outputs.items() if "X-Forwarded-Proto" in text)
    assert "Secure" in cookie and "HttpOnly" in cookie
    shown = next(out for text, out in outputs.items() if "tenant show" in text)
    assert "Europe/Berlin" in shown and "anthropic" in shown
    linked = next(out for text, out in outputs.items() if "/tenants/acme/apps/marketing" in text)
    assert linked.startswith(f"{env['HEARTBEATS_API_TEMPORAL_UI_URL']}/namespaces/{env['TEMPORAL_NAMESPACE']}/workflows?")
    assert "hourly_kpi" in linked
    profile = Path(env["TEMPORAL_CONFIG_FILE"]).read_text()
    assert "[profile.prod]" in profile.replace("  ", "") and env["TEMPORAL_ADDRESS"] in profile


async def check_results(client, values: dict[str, str], database_url: str, provider: ProviderServer) -> None:
    namespace = values["TEMPORAL_NAMESPACE"]
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    registered = {name: kind for name, kind in listed.custom_attributes.items()}
    assert set(SEARCH_ATTRIBUTE_TYPES) <= set(registered)
    # The store on PostgreSQL: migrated, with the tenant and the run's receipt.
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
        rows = await conn.fetch("SELECT outcome, provider FROM receipts WHERE heartbeat_id = $1", HEARTBEAT_ID)
    finally:
        await conn.close()
    assert [(row["outcome"], row["provider"]) for row in rows] == [("suppressed", "anthropic")]
    # The model call went through the llm worker to the provider, with the guide's key.
    assert len(provider.requests_to("anthropic")) == 1


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda block: f"line-{block.line}")
def test_each_command_is_a_known_program(block: Block):
    """Commands a reader types are the project's, Temporal's, or the shell's usual tools."""
    for command in commands(block):
        program = command.split()[0]
        assert program in {"export", "heartbeats", "temporal", "curl", "env"}, command

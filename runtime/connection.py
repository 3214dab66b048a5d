"""How every process of ours reaches Temporal: one place for address, namespace and data converter.

Settings come from Temporal's own environment configuration: `TEMPORAL_ADDRESS`,
`TEMPORAL_NAMESPACE`, and config-file profiles (`TEMPORAL_PROFILE`, `~/.config/temporalio/temporal.toml`),
defaulting to the local dev server (`localhost:7233`, namespace `default`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import traceback
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime, TelemetryConfig

from contract.errors import Unavailable

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"


def connect_options(
    profile: str | None = None, *, address: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """Client.connect keyword arguments from Temporal's env/profile config, with our defaults.

    `address` / `namespace` (e.g. the demo's own server) win over the configuration.
    """
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config(profile=profile))
    if address:
        options["target_host"] = address
    if namespace:
        options["namespace"] = namespace
    options.setdefault("target_host", DEFAULT_ADDRESS)
    options.setdefault("namespace", DEFAULT_NAMESPACE)
    # Pydantic models (manifest specs, activity messages) travel as JSON: workers and clients
    # must agree on the converter.
    options["data_converter"] = pydantic_data_converter
    return options


async def connect(profile: str | None = None, *, address: str | None = None, namespace: str | None = None) -> Client:
    """A client for the configured server; Unavailable, saying how to start one, when it cannot be reached.

    Inside `own_runtime()` the client runs on that block's own SDK runtime (see there).
    """
    options = connect_options(profile, address=address, namespace=namespace)
    try:
        return await connect_on_own_runtime(**options)
    except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
        raise Unavailable(
            f"cannot reach Temporal at {options['target_host']} (namespace {options['namespace']}): {exc}."
            " Start a local server with `heartbeats server`, or set TEMPORAL_ADDRESS."
        ) from None


# ------------------------------------------------------------------------------ clean exit


async def connect_on_own_runtime(target_host: str, **options: Any) -> Client:
    """`Client.connect`, on the runtime of the enclosing `own_runtime()` block when there is one."""
    owner = _current_runtime.get()
    if owner is not None and owner.runtime is not None:
        options["runtime"] = owner.runtime
    client = await Client.connect(target_host, **options)
    if owner is not None:
        owner.clients.add(client)
    return client


class _OwnRuntime:
    """The SDK runtime of one `own_runtime()` block and the clients made on it (weakly)."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = Runtime(telemetry=TelemetryConfig())  # the SDK default's settings
        self.clients: weakref.WeakSet[Client] = weakref.WeakSet()


_current_runtime: ContextVar[_OwnRuntime | None] = ContextVar("heartbeats_current_runtime", default=None)


@contextlib.contextmanager
def own_runtime() -> Iterator[None]:
    """Wrap a process's `asyncio.run(...)` (a CLI command, the worker, the demo): its Temporal clients
    get a runtime of their own,
    shut down (all of its threads joined) when the block ends, before the interpreter exits.

    Why: the SDK's Rust core hands each result back to asyncio from a Tokio thread that takes the
    GIL and calls `loop.call_soon_threadsafe`, which releases the GIL to write the loop's wake-up
    byte. The main thread can then finish the command and start interpreter finalisation before
    that thread takes the GIL back; CPython < 3.14 then ends it with pthread_exit, whose unwinding
    runs PyO3's GIL guard: "Fatal Python error: PyGILState_Release: thread state ... must be
    current when releasing" (exit 134) or a decref without the GIL (exit 139), after the command
    succeeded (temporalio/sdk-python#300).

    Fix, correct by construction: dropping the last reference to a runtime makes the SDK shut its
    Tokio runtime down with the GIL released, which joins every one of its threads (a thread still
    handing a result back finishes first). That happens here, at the end of the block, while the
    interpreter is fully alive; afterwards no SDK thread exists that could race finalisation. The
    default runtime (`Runtime.default()`) lives in a module global until finalisation, so clients
    made here must not use it: `connect()` gives them this block's runtime.
    """
    owner = _OwnRuntime()
    token = _current_runtime.set(owner)
    try:
        yield
    except BaseException as exc:
        # The traceback's frames hold the client (and through it the runtime) until the error
        # has been reported: drop their locals, so the runtime is released now; the traceback
        # still prints (it needs code and line numbers only).
        _clear_traceback_frames(exc)
        raise
    finally:
        _current_runtime.reset(token)
        _shut_down(owner)


def _shut_down(owner: _OwnRuntime) -> None:
    runtime = weakref.ref(owner.runtime) if owner.runtime is not None else None
    owner.runtime = None
    gc.collect()  # a client and its interceptor chain form a reference cycle
    if (runtime is not None and runtime() is not None) or len(owner.clients):
        # Something still holds a client: the runtime will only stop at finalisation, where
        # the exit can crash again. A bug of ours, not the user's: say so in the debug log.
        logging.getLogger(__name__).debug(
            "Temporal runtime still referenced after the command (%d client(s) alive);"
            " its threads stop at interpreter exit", len(owner.clients)
        )


def _clear_traceback_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames in the tracebacks of `exc` and every exception
    chained to it (causes, contexts, members of exception groups)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)

"""How every process of ours reaches Temporal: one place for address, namespace and data converter.

Settings come from Temporal's own environment configuration: `TEMPORAL_ADDRESS`,
`TEMPORAL_NAMESPACE`, and config-file profiles (`TEMPORAL_PROFILE`, `~/.config/temporalio/temporal.toml`),
defaulting to the local dev server (`localhost:7233`, namespace `default`).
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

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
    """A client for the configured server; Unavailable, saying how to start one, when it cannot be reached."""
    options = connect_options(profile, address=address, namespace=namespace)
    try:
        return await Client.connect(**options)
    except RuntimeError as exc:  # the SDK reports connection failures as RuntimeError
        raise Unavailable(
            f"cannot reach Temporal at {options['target_host']} (namespace {options['namespace']}): {exc}."
            " Start a local server with `heartbeats server`, or set TEMPORAL_ADDRESS."
        ) from None

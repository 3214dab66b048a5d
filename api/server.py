"""Running the app on uvicorn: the listening socket, the addresses to show, the server itself.

The socket is bound before uvicorn starts, so a port in use is one clear error, `--port 0` gets
a free port whose number is known before anything is printed, and the demo can fall back to a
free port when 8080 is taken.
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
from urllib.parse import quote

import uvicorn
from fastapi import FastAPI

from api.logs import log_config
from api.token import ApiToken, TokenSource
from contract.errors import Unavailable

BACKLOG = 2048  # uvicorn's default


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one); Unavailable saying why when it cannot be."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind(address)
        # Listening now: a client that connects between the banner and uvicorn's start waits in the
        # backlog instead of being refused.
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hint = "; choose another --port" if exc.errno in (98, 48) else ""  # EADDRINUSE: Linux, macOS
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """The URL a browser on this machine opens for the socket (a wildcard address becomes loopback)."""
    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


def login_link(url: str, token: ApiToken) -> str:
    """The dashboard's sign-in link. A token from the environment is not written out: it may be a
    production secret, and the server's output often ends up in a log."""
    if token.source is TokenSource.ENVIRONMENT:
        return f"{url}/login?token=<HEARTBEATS_API_TOKEN>"
    return f"{url}/login?token={quote(token.value, safe='')}"


def curl_example(url: str, token: ApiToken) -> str:
    """A first call to try, reading the token from where it is kept (never spelling it out)."""
    source = "$HEARTBEATS_API_TOKEN" if token.path is None else f"$(cat {shlex.quote(str(token.path))})"
    return f'curl -H "Authorization: Bearer {source}" {url}/v1/health'


def banner(url: str, token: ApiToken) -> list[str]:
    """What `heartbeats serve` and `heartbeats demo` tell the operator about the server."""
    lines = []
    if token.source is TokenSource.GENERATED:
        lines += [f"Generated an API token, kept in {token.path} (mode 0600); shown this once:", f"  {token.value}"]
    lines += [
        f"API:        {url}/v1/   (OpenAPI: {url}/openapi.json, docs: {url}/docs)",
        f"Dashboard:  {login_link(url, token)}",
        f"Try:        {curl_example(url, token)}",
    ]
    return lines


def uvicorn_server(app: FastAPI, *, quiet: bool = False) -> uvicorn.Server:
    """A uvicorn server for `app`, logging through the token-redacting configuration; `quiet` keeps
    only warnings (the demo's terminal is for the demo)."""
    config = uvicorn.Config(app, log_config=log_config(), log_level="warning" if quiet else "info",
                            lifespan="on", server_header=False, timeout_graceful_shutdown=10)
    return uvicorn.Server(config)

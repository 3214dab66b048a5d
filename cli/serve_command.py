"""`heartbeats serve`: the HTTP API and the operator dashboard, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import UserError
from runtime.connection import own_runtime

if TYPE_CHECKING:
    from api.context import ApiContext


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="HEARTBEATS_API_HOST", show_envvar=True,
              help="Address to listen on. Anything but loopback needs HEARTBEATS_API_TOKEN set.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, envvar="HEARTBEATS_API_PORT",
              show_envvar=True, help="Port to listen on (0: any free port).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the generated token is kept when HEARTBEATS_API_TOKEN is unset"
                   " (default .data/api-token, or HEARTBEATS_API_TOKEN_FILE).")
def serve(host: str, port: int, token_file: Path | None) -> None:
    """Run the HTTP server: the JSON API under /v1/ and the operator dashboard at /.

    Every /v1/ call needs `Authorization: Bearer <token>`. The token is HEARTBEATS_API_TOKEN;
    when that is unset, one is generated at the first start, kept in .data/api-token (mode 0600)
    and shown once. The dashboard link printed at start signs a browser in.

    The store from HEARTBEATS_DATABASE_URL (default .data/heartbeats.db); Temporal from
    TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE or Temporal's config profiles, connected when first needed. Rate limit per app:
    HEARTBEATS_API_RATE_PER_SECOND (default 100) and HEARTBEATS_API_RATE_BURST (default 200).

    \b
    Examples:
      heartbeats serve
      HEARTBEATS_API_TOKEN=... heartbeats serve --host 0.0.0.0 --port 8080
      HEARTBEATS_API_PORT=9000 heartbeats serve          # behind a reverse proxy (docs/deployment.md)
      curl -H "Authorization: Bearer $(cat .data/api-token)" http://127.0.0.1:8080/v1/health
    """
    # Imported here: FastAPI and uvicorn would slow every other command's start.
    from api.app import build_context
    from api.server import is_loopback, listen
    from api.settings import load_settings

    settings = load_settings(token_file=token_file)
    if not is_loopback(host) and settings.token is None:
        raise UserError(
            f"refusing to listen on {host}: beyond this machine the server needs a token you chose;"
            " set HEARTBEATS_API_TOKEN (e.g. to the output of"
            " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or listen on 127.0.0.1")
    sock = listen(host, port)  # first: a port in use is reported before anything is written
    # Ctrl-C and SIGTERM both mean "stop cleanly": uvicorn finishes the requests in flight, then
    # passes the signal on, which ends up here as KeyboardInterrupt.
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        context = build_context(settings)
        with own_runtime():  # the SDK's threads end before the interpreter does
            asyncio.run(_serve(context, sock))
    except KeyboardInterrupt:
        click.echo("Server stopped.", err=True)
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve(context: ApiContext, sock: socket.socket) -> None:
    from api.app import create_app
    from api.server import banner, base_url, uvicorn_server

    await context.backends.open()  # a wrong database URL stops the start here, as one line
    try:
        for line in banner(base_url(sock), context.token):
            click.echo(line)
        click.echo("Press Ctrl-C to stop.")
        await uvicorn_server(create_app(context)).serve(sockets=[sock])
    finally:
        await context.backends.close()


COMMANDS = [serve]

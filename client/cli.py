"""The `heartbeats` command line: one module that wires every command group together.

Each role lives in its own module (manifest commands, local server, store commands, ...);
this file only assembles them and turns library errors into clean CLI errors.
"""

from __future__ import annotations

import logging
import sys

import click

from client import demo, local_server, manifest_commands, operations, store_commands, sync, worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """agent-heartbeats: declare agents and their recurring routines in YAML, run them on Temporal.

    \b
    Quick start:
      heartbeats validate manifests/*.yaml
      heartbeats preview manifests/cmo.yaml --tenant demo --count 5
      heartbeats server
    """
    # Logging is configured once, here at the entry point.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for command in (
    *manifest_commands.COMMANDS,
    *local_server.COMMANDS,
    *store_commands.COMMANDS,
    *worker_command.COMMANDS,
    *sync.COMMANDS,
    *operations.COMMANDS,
    *demo.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="heartbeats")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

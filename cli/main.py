"""The `heartbeats` command line: one group that assembles every command module.

Each role lives in its own module (manifest commands, install commands, operations, data, local
server and worker, demo); this file only assembles them. `main` is the console script.
"""

from __future__ import annotations

import logging
import sys

import click

from cli import (
    budget_commands,
    data_commands,
    demo_command,
    documents_commands,
    handler_commands,
    ingress_commands,
    install_commands,
    manifest_commands,
    operations_commands,
    serve_command,
    server_commands,
    shadow_commands,
    tasks_commands,
    workflow_commands,
)
from cli.errors import CommandGroup


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """agent-heartbeats: declare agents and their recurring routines in YAML, run them on Temporal.

    \b
    Quick start:
      heartbeats validate manifests/*.yaml
      heartbeats preview manifests/cmo.yaml --tenant demo --count 5
      heartbeats server
      heartbeats serve
    """
    # Logging is configured once, here at the entry point.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for command in (
    *manifest_commands.COMMANDS,
    *server_commands.COMMANDS,
    *serve_command.COMMANDS,
    *data_commands.COMMANDS,
    *install_commands.COMMANDS,
    *operations_commands.COMMANDS,
    *ingress_commands.COMMANDS,
    *tasks_commands.COMMANDS,
    *handler_commands.COMMANDS,
    *budget_commands.COMMANDS,
    *shadow_commands.COMMANDS,
    *workflow_commands.COMMANDS,
    *documents_commands.COMMANDS,
    *demo_command.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="heartbeats")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Printing: JSON for scripts, tables for people. Output that is not a terminal is never cut.

A terminal gets tables fitted to its width; a pipe or a file gets every cell whole, on one line per
row, however long (rich would otherwise wrap or ellipsise at 80 columns).
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")

# Wide enough that no table of ours is ever folded when the output is not a terminal.
_UNLIMITED_WIDTH = 100_000


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def console(*, stderr: bool = False) -> Console:
    """A console for tables: the terminal's width, or no limit at all when not a terminal."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, soft_wrap=False)
    return Console(stderr=stderr, soft_wrap=True, width=_UNLIMITED_WIDTH, color_system=None)


def table(*columns: str, title: str | None = None) -> Table:
    return Table(*columns, title=title)


def add_row(table: Table, *cells: str) -> None:
    """Cells are data, not rich markup ("[red]" prints as typed); never folded or cut short."""
    table.add_row(*(Text(cell, no_wrap=True, overflow="ignore") for cell in cells))


def print_table(table: Table) -> None:
    console().print(table)

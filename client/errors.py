"""Errors a user can cause and fix; the CLI prints them without a traceback."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A mistake in the user's input: printed as one clear line, exit status 1."""

    def show(self, file=None) -> None:  # noqa: D102 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)

"""The CLI's one error type, and the translation of the project's errors into it."""

from __future__ import annotations

import click

from contract.errors import HeartbeatsError
from manifest.loader import ManifestError


class UserError(click.ClickException):
    """A mistake the user can fix: printed as one clear line, exit status 1."""

    def show(self, file=None) -> None:  # noqa: D102 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class CommandGroup(click.Group):
    """A group whose commands' project errors come out as UserErrors (no traceback)."""

    def invoke(self, ctx: click.Context):  # noqa: D102 - click's signature
        try:
            return super().invoke(ctx)
        except (HeartbeatsError, ManifestError) as error:
            raise UserError(str(error)) from None

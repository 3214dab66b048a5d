"""The project's errors: one small hierarchy that library code raises and callers translate.

Library code (store, client library, worker settings) raises these with a message that says what
to fix; the CLI prints the message (exit status 1) and the HTTP layer maps the class to a status
code (InvalidInput 400, Unauthorized 401, NotFound 404, Conflict 409, Unavailable 503,
TimedOut 504). Users never see a traceback for a mistake of theirs.
"""

from __future__ import annotations


class HeartbeatsError(Exception):
    """A problem a user or operator can cause and fix; the message says how."""


class InvalidInput(HeartbeatsError, ValueError):
    """The request itself is wrong: a malformed id, a bad value, an invalid manifest."""


class Unauthorized(HeartbeatsError):
    """The caller could not be authenticated: a missing or wrong token, a bad or stale signature."""


class NotFound(HeartbeatsError, LookupError):
    """What the request names does not exist (for this tenant)."""


class Conflict(HeartbeatsError):
    """The request is valid but the current state does not allow it (e.g. a workflow not running)."""


class Unavailable(HeartbeatsError):
    """A service the request needs (Temporal, the database) cannot be reached or refused to answer."""


class TimedOut(HeartbeatsError):
    """The work was accepted but did not finish within the caller's wait (it goes on; the message
    says where its result will be)."""


class ConfigurationError(HeartbeatsError):
    """A setting (environment variable, settings file) is missing or invalid."""

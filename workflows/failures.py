"""Reading an activity's failure inside workflow code: its root cause, type and text."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from contract.messages import MAX_ERROR_CHARS


def root_cause(failure: BaseException) -> BaseException:
    """A regular activity's failure arrives wrapped in ActivityError, a local activity's bare."""
    while isinstance(failure, ActivityError) and failure.cause is not None:
        failure = failure.cause
    return failure


def is_cancellation(failure: BaseException) -> bool:
    """The workflow is being cancelled (an uninstall): not a failure of the work."""
    return isinstance(root_cause(failure), CancelledError)


def error_type(failure: FailureError) -> str:
    """The stable type of an ApplicationError, else the exception's class name."""
    cause = root_cause(failure)
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__


def error_text(failure: FailureError) -> str:
    return str(root_cause(failure))[:MAX_ERROR_CHARS]


def excerpt(text: str, limit: int = 60) -> str:
    """One line of at most `limit` characters, for summaries shown in the web UI."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

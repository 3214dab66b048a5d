"""Dashboard sessions: random ids kept in this process's memory, never the token itself.

The cookie holds only the id, so a leaked cookie is worth one session (until it expires or the
server restarts), not the token. A restart signs every browser out; the login link works again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

SESSION_COOKIE = "heartbeats_session"
SESSION_SECONDS = 12 * 60 * 60
MAX_SESSIONS = 1_000  # beyond this, the oldest sessions end first


class DashboardSessions:
    def __init__(self, *, lifetime: float = SESSION_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._expiry: dict[str, float] = {}  # insertion order: oldest first

    def open(self) -> str:
        """A new session's id."""
        self._drop_expired()
        while len(self._expiry) >= MAX_SESSIONS:
            del self._expiry[next(iter(self._expiry))]
        session = secrets.token_urlsafe(32)
        self._expiry[session] = self._clock() + self.lifetime
        return session

    def valid(self, session: str | None) -> bool:
        if not session:
            return False
        expiry = self._expiry.get(session)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[session]
            return False
        return True

    def close(self, session: str | None) -> None:
        if session:
            self._expiry.pop(session, None)

    def _drop_expired(self) -> None:
        now = self._clock()
        for session in [s for s, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[session]

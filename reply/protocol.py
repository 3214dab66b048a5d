"""The heartbeat reply protocol: `HEARTBEAT_OK` suppression and `<escalate-to-vision/>`.

Pure: no I/O, no Temporal imports (workflows and activities both import it).

Rules, with the choices the seed leaves open:

- A reply is *suppressed* (not written to any conversation; the receipt says `suppressed`) when it
  starts or ends with the token `HEARTBEAT_OK` and has at most 300 *other* characters.
- Other characters: what remains after removing the token (with its markdown wrapping, see below)
  and then the surrounding whitespace. A token at both ends is removed at both ends. 300 counts
  Python characters (code points), whitespace inside the remainder included: "HEARTBEAT_OK" followed
  by 300 characters is suppressed, by 301 it is an ordinary reply.
- Surrounding whitespace of the whole reply is ignored ("\n  HEARTBEAT_OK \n" is the bare token).
- Markdown wrapping counts: up to three of `*`, `_` or a backtick directly around the token
  (`**HEARTBEAT_OK**`, `` `HEARTBEAT_OK` ``, `_HEARTBEAT_OK_`, a fenced block ```` ``` ````), since
  models like to format a status word. Strikethrough (`~~`) does not: a struck-out OK is not an OK.
- The token must stand alone: `HEARTBEAT_OKAY` or `MY_HEARTBEAT_OK` are ordinary text.
- `HEARTBEAT_OK` in the middle of a reply is ordinary text.
- Case-sensitive: only `HEARTBEAT_OK` exactly. It is a machine sentinel the prompt spells out, and
  suppression is the costly direction to get wrong: a false "OK" silently drops a real message (e.g.
  "Heartbeat ok, but signups fell 40%"), while a missed one only costs one extra message in the thread.
- `<escalate-to-vision/>` (also `<escalate-to-vision />`) anywhere sets `escalated`. An escalated reply is
  never suppressed: escalating is substantive by definition. The marker is a control tag, so it is
  removed from the reply's `text` (what gets persisted and shown); the receipt's `escalated` flag keeps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEARTBEAT_OK = "HEARTBEAT_OK"
ESCALATE_TO_VISION = "<escalate-to-vision/>"
MAX_OTHER_CHARS = 300  # a reply with the token and at most this many other characters is suppressed

_ESCALATION = re.compile(r"<escalate-to-vision\s*/>")
_MARKERS = "*_`"  # markdown emphasis and code
_MAX_MARKER_RUN = 3


@dataclass(frozen=True)
class ReplyVerdict:
    """What the protocol makes of one reply."""

    suppressed: bool  # HEARTBEAT_OK at start or end, <= 300 other characters, not escalated
    escalated: bool  # <escalate-to-vision/> somewhere in the reply
    text: str  # the reply stripped of surrounding whitespace and of escalation markers


def classify_reply(text: str) -> ReplyVerdict:
    """Apply the reply protocol to an agent's reply (see the module docstring for the rules)."""
    stripped = text.strip()
    if _ESCALATION.search(stripped):
        return ReplyVerdict(suppressed=False, escalated=True, text=_ESCALATION.sub("", stripped).strip())
    other = other_content(stripped)
    return ReplyVerdict(
        suppressed=other is not None and len(other) <= MAX_OTHER_CHARS, escalated=False, text=stripped
    )


def other_content(text: str) -> str | None:
    """The reply without a leading and/or trailing HEARTBEAT_OK (and surrounding whitespace), or None
    when the token is at neither end."""
    stripped = text.strip()
    rest = _without_leading_token(stripped)
    if rest is not None:
        tail = _without_trailing_token(rest)
        return rest if tail is None else tail
    return _without_trailing_token(stripped)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _leading_markers(text: str) -> str:
    run = 0
    while run < min(len(text), _MAX_MARKER_RUN) and text[run] in _MARKERS:
        run += 1
    return text[:run]


def _trailing_markers(text: str) -> str:
    run = 0
    while run < min(len(text), _MAX_MARKER_RUN) and text[-1 - run] in _MARKERS:
        run += 1
    return text[len(text) - run :]


def _without_leading_token(text: str) -> str | None:
    body = text[len(_leading_markers(text)) :].lstrip()
    if not body.startswith(HEARTBEAT_OK):
        return None
    rest = body[len(HEARTBEAT_OK) :]
    closer = _leading_markers(rest)
    after = rest[len(closer) :]
    # HEARTBEAT_OKAY / HEARTBEAT_OK_2 are other words. A closing emphasis (`**`) ends the token
    # even when a letter follows; underscores alone do not (they are word characters).
    if after[:1] and _is_word_char(after[0]) and not closer.strip("_"):
        return None
    return after.strip()


def _without_trailing_token(text: str) -> str | None:
    body = text[: len(text) - len(_trailing_markers(text))].rstrip()
    if not body.endswith(HEARTBEAT_OK):
        return None
    rest = body[: -len(HEARTBEAT_OK)]
    opener = _trailing_markers(rest)
    before = rest[: len(rest) - len(opener)]
    if before[-1:] and _is_word_char(before[-1]) and not opener.strip("_"):
        return None
    return before.strip()

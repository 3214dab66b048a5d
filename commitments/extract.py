"""Find commitments in an agent's reply: deterministic rules, no model.

A sentence is a commitment when it has a first-person future cue and a time phrase:

    cue:   I'll / I will / I shall / we'll / we will / I'm going to / we are going to /
           I plan|intend|promise|aim to / let me / a sentence starting with "Will"
    time:  tomorrow | the day after tomorrow | in N hours | in N days | in N business days |
           in N weeks | next week | (the) end of (the|this) week | (the) end of next week |
           next month | [on|by|before|until|next|this|coming] <weekday> | YYYY-MM-DD

Negated cues (I won't, I will not, we're not going to) and questions (ending in "?") are never
commitments; a weekday after last/past/previous/since/from, or in the possessive ("Tuesday's"), is
not a time phrase. A sentence yields at most one commitment: its earliest time phrase (the longest one
when two start at the same place).

Due times, in the given zone (the tenant's):

- a day phrase is due at DUE_HOUR:00 local time on that day (DST-aware: 09:00 is 09:00 on both
  sides of a change);
- a weekday name (with or without on/by/next/this) is the next such day strictly after today, so
  "on Tuesday" said on a Tuesday is a week later;
- "next week" is the next Monday (strictly after today); "end of the week" is Friday, today included
  (said on a Saturday or Sunday: the next Friday); "end of next week" is the Friday after next Monday;
- "next month" is the first of the next month;
- "in N business days" skips Saturdays and Sundays;
- "in N hours" is exactly N hours after `now` (1 to 72).

Pure: no I/O beyond the IANA zone data, no Temporal imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from schedule.local_time import wall_to_utc, zone

DUE_HOUR = 9
MAX_COMMITMENT_CHARS = 300
MAX_HOURS = 72
MAX_DAYS = 366

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3,
}
_COUNT = r"(?P<n>\d{1,3}|a couple of|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"

_CUE = re.compile(
    r"\b(?:i|we)\s*(?:'ll|will|shall)\b"
    r"|\b(?:i|we)\s*(?:'m|am|'re|are)\s+going\s+to\b"
    r"|\b(?:i|we)\s+(?:plan|intend|promise|aim)\s+to\b"
    r"|\blet\s+me\b"
    r"|^\s*will\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:i|we)\s*(?:won't|will\s+not|'ll\s+not|shall\s+not|shan't)\b"
    r"|\b(?:i|we)\s*(?:'m|am|'re|are)\s+not\s+going\s+to\b"
    r"|\b(?:i|we)\s+(?:don't|do\s+not)\s+(?:plan|intend)\s+to\b",
    re.IGNORECASE,
)

# (name, pattern); the resolver for each name is in _resolve.
_TIME_PHRASES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("day_after_tomorrow", r"\bthe\s+day\s+after\s+tomorrow\b"),
        ("tomorrow", r"\btomorrow\b"),
        ("hours", rf"\bin\s+{_COUNT}\s+hours?\b"),
        ("business_days", rf"\bin\s+{_COUNT}\s+(?:business|working)\s+days?\b"),
        ("days", rf"\bin\s+{_COUNT}\s+days?\b"),
        ("weeks", rf"\bin\s+{_COUNT}\s+weeks?\b"),
        ("end_of_next_week", r"\b(?:the\s+)?end\s+of\s+next\s+week\b"),
        ("end_of_week", r"\b(?:the\s+)?end\s+of\s+(?:the|this)\s+week\b"),
        ("next_week", r"\bnext\s+week\b"),
        ("next_month", r"\bnext\s+month\b"),
        (
            "weekday",
            r"\b(?:(?:on|by|before|until|till|next|this|coming|this\s+coming)\s+)?"
            rf"(?P<weekday>{'|'.join(_WEEKDAYS)})\b",
        ),
        ("iso_date", r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
    )
)

_PAST_WEEKDAY = re.compile(r"\b(?:last|past|previous|since|from)\s+$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BULLET = re.compile(r"^\s*(?:[-*+•>]|#{1,6}|\d{1,3}[.)])\s+")
_MARKUP = re.compile(r"\*\*|__|`")


@dataclass(frozen=True, slots=True)
class Commitment:
    """A commitment found in a reply: the sentence that makes it, and when it falls due (UTC)."""

    text: str
    due_at: datetime


def extract_commitments(text: str, *, now: datetime, timezone: str) -> list[Commitment]:
    """The commitments in `text`, in order, each once; `now` is aware, `timezone` an IANA name."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware (got naive {now.isoformat()})")
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    found: list[Commitment] = []
    seen: set[tuple[str, datetime]] = set()
    for sentence in _sentences(text):
        if sentence.endswith("?") or not _CUE.search(sentence) or _NEGATED.search(sentence):
            continue
        due_at = _due(sentence, now=now, today=today, timezone=timezone)
        if due_at is None:
            continue
        commitment = Commitment(text=_cap(sentence), due_at=due_at)
        key = (commitment.text.casefold(), commitment.due_at)
        if key not in seen:
            seen.add(key)
            found.append(commitment)
    return found


def local_day(at: datetime, timezone: str) -> date:
    """The calendar day `at` falls on in `timezone` (the day the daily cap counts against)."""
    return at.astimezone(zone(timezone)).date()


def due_on(day: date, timezone: str) -> datetime:
    """DUE_HOUR:00 local on `day`, as an aware UTC instant."""
    return wall_to_utc(datetime.combine(day, time(DUE_HOUR)), zone(timezone))


# ---------------------------------------------------------------------------------- helpers


def _sentences(text: str) -> list[str]:
    sentences = []
    for line in text.replace("\u2019", "'").replace("\u2018", "'").splitlines():
        line = _MARKUP.sub("", _BULLET.sub("", line)).strip()
        sentences += [part.strip() for part in _SENTENCE_END.split(line) if part.strip()]
    return sentences


def _cap(sentence: str) -> str:
    return sentence if len(sentence) <= MAX_COMMITMENT_CHARS else sentence[: MAX_COMMITMENT_CHARS - 1] + "…"


def _due(sentence: str, *, now: datetime, today: date, timezone: str) -> datetime | None:
    matches = [(match.start(), -len(match.group(0)), name, match)
               for name, pattern in _TIME_PHRASES
               for match in pattern.finditer(sentence)]
    for _start, _length, name, match in sorted(matches, key=lambda item: item[:2]):
        resolved = _resolve(name, match, now=now, today=today)
        if isinstance(resolved, datetime):
            return resolved
        if resolved is not None:
            return due_on(resolved, timezone)
    return None


def _resolve(name: str, match: re.Match[str], *, now: datetime, today: date) -> date | datetime | None:
    """The day (or, for hours, the instant) a time phrase names; None when it names none."""
    if name == "tomorrow":
        return today + timedelta(days=1)
    if name == "day_after_tomorrow":
        return today + timedelta(days=2)
    if name == "next_week":
        return _next_weekday(today, 0)
    if name == "end_of_week":
        return today + timedelta(days=(4 - today.weekday()) % 7)
    if name == "end_of_next_week":
        return _next_weekday(today, 0) + timedelta(days=4)
    if name == "next_month":
        return date(today.year + today.month // 12, today.month % 12 + 1, 1)
    if name == "weekday":
        before, after = match.string[: match.start()], match.string[match.end():]
        if _PAST_WEEKDAY.search(before) or after.startswith("'s"):
            return None  # "since Monday", "last Tuesday's numbers": about the past, not a due day
        return _next_weekday(today, _WEEKDAYS.index(match.group("weekday").lower()))
    if name == "iso_date":
        try:
            return date(int(match.group("y")), int(match.group("m")), int(match.group("d")))
        except ValueError:
            return None  # 2025-02-30: not a day
    count = _NUMBERS.get(re.sub(r"\s+", " ", match.group("n").lower())) or int(match.group("n"))
    if name == "hours":
        return (now + timedelta(hours=count)).astimezone(UTC) if 1 <= count <= MAX_HOURS else None
    days = {"days": count, "weeks": 7 * count}.get(name)
    if days is not None:
        return today + timedelta(days=days) if 1 <= days <= MAX_DAYS else None
    if name == "business_days":
        return _add_business_days(today, count) if 1 <= count <= MAX_DAYS else None
    raise AssertionError(f"no resolver for time phrase {name!r}")


def _next_weekday(today: date, weekday: int) -> date:
    """The first day strictly after `today` that is `weekday` (0 = Monday)."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _add_business_days(day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day

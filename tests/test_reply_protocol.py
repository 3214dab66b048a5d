"""The reply protocol, as one table: (reply, suppressed, escalated)."""

from __future__ import annotations

import pytest

from reply.protocol import MAX_OTHER_CHARS, ReplyVerdict, classify_reply, other_content

OK = "HEARTBEAT_OK"
ESC = "<escalate-to-vision/>"


def chars(n: int) -> str:
    """n characters of other content, spaces inside (they count), no whitespace at the ends."""
    text = ("abcd " * (n // 5 + 1))[:n]
    return text[:-1] + "x" if text.endswith(" ") else text


CASES = [
    # --- the bare token, whitespace around it ignored
    ("bare token", OK, True, False),
    ("surrounding whitespace", f"  \n\t{OK}\n\n ", True, False),
    ("empty reply is not OK", "", False, False),
    ("whitespace-only reply is not OK", "   \n", False, False),
    # --- start or end
    ("at start, short note", f"{OK} all KPIs on pace", True, False),
    ("at end, short note", f"All KPIs on pace. {OK}", True, False),
    ("at end after newline", f"Checked 3 campaigns.\n\n{OK}", True, False),
    ("at both ends", f"{OK} nothing new {OK}", True, False),
    ("trailing punctuation is other content", f"{OK}.", True, False),
    ("colon after token", f"{OK}: quiet hour", True, False),
    # --- middle of text is ordinary text
    ("middle of text", f"Signups are off pace, not {OK} at all, check", False, False),
    ("middle of long text", f"Checked.\n{OK} for churn\nbut signups fell 40%.", False, False),
    # --- case-sensitive token
    ("lowercase", "heartbeat_ok", False, False),
    ("title case", "Heartbeat_Ok", False, False),
    ("space instead of underscore", "HEARTBEAT OK", False, False),
    # --- the token must stand alone
    ("longer word", "HEARTBEAT_OKAY then", False, False),
    ("suffix with underscore", "HEARTBEAT_OK_STATUS: fine", False, False),
    ("prefix word", "MY_HEARTBEAT_OK", False, False),
    ("glued to text at end", f"fine{OK}", False, False),
    # --- markdown wrapping counts
    ("bold", f"**{OK}**", True, False),
    ("bold at end", f"Nothing to do. **{OK}**", True, False),
    ("bold italic", f"***{OK}***", True, False),
    ("italic underscores", f"_{OK}_", True, False),
    ("double underscores", f"__{OK}__", True, False),
    ("inline code", f"`{OK}`", True, False),
    ("code fence", f"```\n{OK}\n```", True, False),
    ("bold spanning the line", f"**{OK} — nothing to report**", True, False),
    ("bold followed directly by text", f"**{OK}**quiet", True, False),
    ("strikethrough is not an OK", f"~~{OK}~~", False, False),
    ("bold lowercase still case-sensitive", "**heartbeat_ok**", False, False),
    # --- the 300-character boundary: other characters after removing the token and whitespace
    ("300 other at start", f"{OK} {chars(300)}", True, False),
    ("301 other at start", f"{OK} {chars(301)}", False, False),
    ("300 other at end", f"{chars(300)}\n{OK}", True, False),
    ("301 other at end", f"{chars(301)}\n{OK}", False, False),
    ("whitespace around the rest is not counted", f"{OK}\n\n   {chars(300)}   \n", True, False),
    ("300 with markdown wrapping", f"**{OK}** {chars(300)}", True, False),
    ("301 with markdown wrapping", f"**{OK}** {chars(301)}", False, False),
    ("300 non-ASCII characters (code points, not bytes)", f"{OK} {'é' * 300}", True, False),
    # --- escalation
    ("escalation alone", ESC, False, True),
    ("escalation in text", f"Signups fell 40%. {ESC} Needs a re-plan.", False, True),
    ("escalation with OK at start is not suppressed", f"{OK} {ESC}", False, True),
    ("escalation with OK at end is not suppressed", f"{ESC}\n{OK}", False, True),
    ("escalation with a space before the slash", "Re-plan needed <escalate-to-vision />", False, True),
    ("escalation is case-sensitive", "<ESCALATE-TO-VISION/>", False, False),
    ("escalation tag must be self-closing", "<escalate-to-vision>", False, False),
]


@pytest.mark.parametrize(("reply", "suppressed", "escalated"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_reply(reply: str, suppressed: bool, escalated: bool) -> None:
    verdict = classify_reply(reply)
    assert (verdict.suppressed, verdict.escalated) == (suppressed, escalated)


def test_boundary_helper_counts_what_it_says() -> None:
    assert len(other_content(f"{OK} {chars(300)}")) == MAX_OTHER_CHARS
    assert len(other_content(f"**{OK}** {chars(301)}")) == MAX_OTHER_CHARS + 1
    assert other_content(f"  {OK}  ") == ""
    assert other_content(f"a {OK} b") is None


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (f"  {OK}  ", OK),
        (f"\nSignups fell. {ESC}\n", "Signups fell."),
        (f"{ESC} Re-plan: pause campaign B.", "Re-plan: pause campaign B."),
        (ESC, ""),
        (f"Middle {OK} stays", f"Middle {OK} stays"),
    ],
)
def test_text_is_stripped_and_loses_the_escalation_marker(reply: str, text: str) -> None:
    assert classify_reply(reply).text == text


def test_verdict_is_a_frozen_value() -> None:
    verdict = classify_reply(OK)
    assert verdict == ReplyVerdict(suppressed=True, escalated=False, text=OK)
    with pytest.raises(AttributeError):
        verdict.suppressed = False  # type: ignore[misc]

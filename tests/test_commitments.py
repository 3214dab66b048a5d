"""Commitments: the pure extraction table, the post-pass of complete_tick, and the commitment
pre-filter end to end (written by complete_tick, fed by run_prefilter, marked done by the next tick)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.prefilter import run_prefilter
from activities.ticks import SUMMARY_KIND, complete_tick
from commitments import (
    COMMITMENT_EXPIRY,
    COMMITMENT_KIND,
    MAX_COMMITMENTS_PER_DAY,
    Commitment,
    extract_commitments,
)
from contract.messages import AgentReply, CompleteTickRequest, PrefilterRequest, TickRef
from manifest.models import INTERNAL_AGENT_MEMORY
from skills import default_registry
from store import Store
from tests.store_json import jsonable

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Friday 2025-03-28, 10:00 in Berlin (CET, +01:00). Berlin springs forward on Sunday 2025-03-30.
FRI_BERLIN = utc("2025-03-28T09:00:00Z")
# Saturday 2025-11-01, 12:00 in New York (EDT, -04:00). New York falls back on Sunday 2025-11-02.
SAT_NEW_YORK = utc("2025-11-01T16:00:00Z")

# ------------------------------------------------------------------------------ extraction


@pytest.mark.parametrize(
    ("text", "now", "timezone", "due"),
    [
        # Day phrases are due at 09:00 local: 08:00Z before the spring-forward, 07:00Z after it.
        ("I'll follow up on Tuesday.", FRI_BERLIN, BERLIN, "2025-04-01T07:00:00Z"),
        ("I will check again tomorrow.", FRI_BERLIN, BERLIN, "2025-03-29T08:00:00Z"),
        ("I'll review this in 3 days.", FRI_BERLIN, BERLIN, "2025-03-31T07:00:00Z"),
        ("I will check the day after tomorrow.", FRI_BERLIN, BERLIN, "2025-03-30T07:00:00Z"),  # the DST day
        ("I'll circle back next week.", FRI_BERLIN, BERLIN, "2025-03-31T07:00:00Z"),  # next Monday
        # A weekday name is the next such day strictly after today: "by Friday" on a Friday is a week on.
        ("We'll have the draft ready by Friday.", FRI_BERLIN, BERLIN, "2025-04-04T07:00:00Z"),
        ("I'll follow up next Monday.", FRI_BERLIN, BERLIN, "2025-03-31T07:00:00Z"),
        ("Let me look again at the end of the week.", FRI_BERLIN, BERLIN, "2025-03-28T08:00:00Z"),  # today
        ("I'll finish it by the end of next week.", FRI_BERLIN, BERLIN, "2025-04-04T07:00:00Z"),
        ("I'm going to re-run it in 2 business days.", FRI_BERLIN, BERLIN, "2025-04-01T07:00:00Z"),
        ("Will follow up in a week.", FRI_BERLIN, BERLIN, "2025-04-04T07:00:00Z"),
        ("I will check in a couple of days.", FRI_BERLIN, BERLIN, "2025-03-30T07:00:00Z"),
        ("I plan to revisit it on 2025-04-10.", FRI_BERLIN, BERLIN, "2025-04-10T07:00:00Z"),
        ("I'll check the numbers next month.", FRI_BERLIN, BERLIN, "2025-04-01T07:00:00Z"),
        ("I'll ping them in 2 hours.", FRI_BERLIN, BERLIN, "2025-03-28T11:00:00Z"),  # exact, not 09:00
        ("I\u2019ll follow up on Tuesday", FRI_BERLIN, BERLIN, "2025-04-01T07:00:00Z"),  # curly apostrophe
        ("- **I'll email the lead tomorrow**", FRI_BERLIN, BERLIN, "2025-03-29T08:00:00Z"),  # markdown
        ("I'll compare with last Tuesday's numbers tomorrow.", FRI_BERLIN, BERLIN, "2025-03-29T08:00:00Z"),
        # Fall back in New York: 09:00 EDT is 13:00Z, 09:00 EST is 14:00Z.
        ("I'll check again tomorrow.", SAT_NEW_YORK, NEW_YORK, "2025-11-02T14:00:00Z"),
        ("I'll check again on Monday.", SAT_NEW_YORK, NEW_YORK, "2025-11-03T14:00:00Z"),
        ("I'll check again in 1 day.", utc("2025-10-31T16:00:00Z"), NEW_YORK, "2025-11-01T13:00:00Z"),
        # "Today" is the local day: the same instant is Saturday in Los Angeles, Sunday in Tokyo.
        ("I'll check again tomorrow.", utc("2025-03-01T23:30:00Z"), "America/Los_Angeles", "2025-03-02T17:00:00Z"),
        ("I'll check again tomorrow.", utc("2025-03-01T23:30:00Z"), "Asia/Tokyo", "2025-03-03T00:00:00Z"),
        # Not commitments: negated, questions, someone else, the past, no time phrase.
        ("I won't follow up tomorrow.", FRI_BERLIN, BERLIN, None),
        ("We are not going to send anything next week.", FRI_BERLIN, BERLIN, None),
        ("Should I follow up tomorrow?", FRI_BERLIN, BERLIN, None),
        ("Will you check tomorrow?", FRI_BERLIN, BERLIN, None),
        ("The team will review it next week.", FRI_BERLIN, BERLIN, None),
        ("I'll report what changed since Monday.", FRI_BERLIN, BERLIN, None),
        ("I'll keep an eye on it.", FRI_BERLIN, BERLIN, None),
        ("Signups dropped 12% by Friday.", FRI_BERLIN, BERLIN, None),
        ("I'll check on 2025-02-30.", FRI_BERLIN, BERLIN, None),  # not a day
    ],
)
def test_extraction_table(text: str, now: datetime, timezone: str, due: str | None) -> None:
    found = extract_commitments(text, now=now, timezone=timezone)
    if due is None:
        assert found == []
    else:
        [commitment] = found
        assert commitment.due_at == utc(due) and commitment.due_at.tzinfo is UTC
        assert "**" not in commitment.text and not commitment.text.startswith("-")


def test_extraction_splits_sentences_and_keeps_each_commitment_once() -> None:
    text = ("Signups are off pace (182 vs 250). I'll check again tomorrow.\n"
            "- I'll email the drafter on Tuesday!\n"
            "I'll check again tomorrow.")
    assert extract_commitments(text, now=FRI_BERLIN, timezone=BERLIN) == [
        Commitment(text="I'll check again tomorrow.", due_at=utc("2025-03-29T08:00:00Z")),
        Commitment(text="I'll email the drafter on Tuesday!", due_at=utc("2025-04-01T07:00:00Z")),
    ]
    # One sentence, one commitment: its earliest time phrase.
    [one] = extract_commitments("I'll check tomorrow and again on Tuesday.", now=FRI_BERLIN, timezone=BERLIN)
    assert one.due_at == utc("2025-03-29T08:00:00Z")


def test_extraction_needs_an_aware_now_and_caps_the_text() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        extract_commitments("I'll check tomorrow.", now=datetime(2025, 3, 1), timezone=BERLIN)
    [long] = extract_commitments("I'll check tomorrow " + "and more " * 100, now=FRI_BERLIN, timezone=BERLIN)
    assert len(long.text) == 300 and long.text.endswith("…")


# --------------------------------------------------------------------------- post-pass

TENANT, APP, AGENT = "acme", "marketing", "cmo"


def tick(slug: str, n: int, at: datetime) -> TickRef:
    return TickRef(heartbeat_id=f"heartbeat:{TENANT}:{APP}:{AGENT}:{slug}", tenant=TENANT, app=APP, agent=AGENT,
                   slug=slug, tick_id=f"run-1/{n}", at=at, trigger="schedule")


def completion(t: TickRef, text: str) -> CompleteTickRequest:
    reply = AgentReply(text=text, provider="offline", model="offline-cheap", tokens_in=10, tokens_out=5)
    return CompleteTickRequest(tick=t, reply=reply, rows=1, conversation_mode="dedicated", duration_ms=50)


async def commitments(store: Store, *, at: datetime = FRI_BERLIN) -> list[dict[str, Any]]:
    entries = jsonable(await store.memory.query(tenant=TENANT, app=APP, agent=AGENT, kind=COMMITMENT_KIND, now=at, limit=100))
    return sorted(entries, key=lambda e: e["id"])


@pytest.fixture
async def berlin(store: Store) -> Store:
    await store.tenants.upsert(tenant=TENANT, timezone=BERLIN)
    return store


async def test_complete_tick_writes_commitments_once_even_when_retried(berlin: Store) -> None:
    store = berlin
    text = "Signups are off pace: 182 vs 250.\nI'll check again tomorrow. I'll ask the drafter for a post on Tuesday."
    request = completion(tick("hourly_kpi", 1, FRI_BERLIN), text)
    first = await complete_tick(store, request)
    again = await complete_tick(store, request)
    assert first == again and first.outcome == "substantive"

    written = await commitments(store)
    assert [(e["content"], e["due_at"], e["expires_at"]) for e in written] == [
        ("I'll check again tomorrow.", "2025-03-29T08:00:00Z", "2025-04-05T08:00:00Z"),
        ("I'll ask the drafter for a post on Tuesday.", "2025-04-01T07:00:00Z", "2025-04-08T07:00:00Z"),
    ]
    assert written[0]["data"] == {"heartbeat_id": request.tick.heartbeat_id, "tick_id": "run-1/1", "index": 0,
                                  "inferred_on": "2025-03-28"}
    assert len(jsonable(await store.memory.query(tenant=TENANT, app=APP, agent=AGENT, kind=SUMMARY_KIND,
                                        now=FRI_BERLIN))) == 1


async def test_suppressed_replies_infer_no_commitments(berlin: Store) -> None:
    done = await complete_tick(berlin, completion(tick("hourly_kpi", 1, FRI_BERLIN),
                                                  "HEARTBEAT_OK - I'll check again tomorrow."))
    assert done.outcome == "suppressed" and await commitments(berlin) == []


async def test_commitments_are_capped_per_agent_per_local_day(berlin: Store, caplog: pytest.LogCaptureFixture) -> None:
    store = berlin
    many = " ".join(f"I'll check campaign {n} tomorrow." for n in range(MAX_COMMITMENTS_PER_DAY + 2))
    with caplog.at_level(logging.WARNING):
        await complete_tick(store, completion(tick("hourly_kpi", 1, FRI_BERLIN), many))
    assert len(await commitments(store)) == MAX_COMMITMENTS_PER_DAY
    assert "2 commitment(s) dropped" in caplog.text and "I'll check campaign 6 tomorrow." in caplog.text

    # Later the same Berlin day (23:30 local is 22:30Z): the cap is reached, another heartbeat adds none.
    late = utc("2025-03-28T22:30:00Z")
    await complete_tick(store, completion(tick("daily", 2, late), "I'll review the funnel on Monday."))
    assert len(await commitments(store)) == MAX_COMMITMENTS_PER_DAY
    # 00:30 Berlin is the next local day (still the 28th in UTC): a fresh allowance.
    next_day = utc("2025-03-28T23:30:00Z")
    await complete_tick(store, completion(tick("daily", 3, next_day), "I'll review the funnel on Monday."))
    newest = (await commitments(store))[-1]
    assert (newest["content"], newest["data"]["inferred_on"]) == ("I'll review the funnel on Monday.", "2025-03-29")


# ----------------------------------------------------------------------- end to end


def review(n: int, at: datetime) -> PrefilterRequest:
    return PrefilterRequest(tick=tick("review_commitments", n, at), skill=INTERNAL_AGENT_MEMORY, tool="query",
                            params={"kind": COMMITMENT_KIND}, invoke_always=False)


async def fed(store: Store, n: int, at: datetime) -> list[str]:
    result = await run_prefilter(store, default_registry(app_skills=False), review(n, at), now=at)
    return [row["content"] for row in result.rows]


async def test_commitment_prefilter_feeds_only_due_unexpired_open_commitments(berlin: Store) -> None:
    store = berlin
    text = "KPIs are off pace.\nI'll check signups again tomorrow. I'll ask x_monitor about mentions on Tuesday."
    await complete_tick(store, completion(tick("hourly_kpi", 1, FRI_BERLIN), text))
    tomorrow_due, tuesday_due = utc("2025-03-29T08:00:00Z"), utc("2025-04-01T07:00:00Z")

    # Not due yet: nothing fed, the tick ends as skipped without waking the agent.
    assert await fed(store, 1, FRI_BERLIN + timedelta(hours=1)) == []
    [receipt] = jsonable(await store.receipts.list(tenant=TENANT, heartbeat_id=review(1, FRI_BERLIN).tick.heartbeat_id))
    assert (receipt["outcome"], receipt["reason"]) == ("skipped", "prefilter_empty")

    # Due: fed. The tick fails before completing, so the next review feeds it again.
    assert await fed(store, 2, tomorrow_due) == ["I'll check signups again tomorrow."]
    assert await fed(store, 3, tomorrow_due + timedelta(hours=1)) == ["I'll check signups again tomorrow."]
    # The tick that was fed it completes (substantive): it is done and never fed again.
    await complete_tick(store, completion(review(3, tomorrow_due).tick, "Signups recovered to 240."))
    assert await fed(store, 4, tomorrow_due + timedelta(hours=2)) == []
    [kept] = [e for e in await commitments(store, at=tomorrow_due) if e["due_at"] == "2025-03-29T08:00:00Z"]
    assert kept["done_at"] is not None

    # Tuesday's is fed when due; a suppressed reply ("nothing to do") also closes it.
    assert await fed(store, 5, tuesday_due) == ["I'll ask x_monitor about mentions on Tuesday."]
    await complete_tick(store, completion(review(5, tuesday_due).tick, "HEARTBEAT_OK"))
    assert await fed(store, 6, tuesday_due + timedelta(hours=1)) == []


async def test_unacted_commitments_expire(berlin: Store) -> None:
    store = berlin
    await complete_tick(store, completion(tick("hourly_kpi", 1, FRI_BERLIN), "I'll check signups again tomorrow."))
    due = utc("2025-03-29T08:00:00Z")
    assert await fed(store, 1, due + COMMITMENT_EXPIRY - timedelta(seconds=1)) == ["I'll check signups again tomorrow."]
    assert await fed(store, 2, due + COMMITMENT_EXPIRY) == []  # never completed, and now expired


async def test_agent_written_commitments_follow_the_same_rules(berlin: Store) -> None:
    store = berlin
    # Without a due time a commitment is due at once; with one it waits and expires a week later.
    await store.memory.add(tenant=TENANT, app=APP, agent=AGENT, kind=COMMITMENT_KIND, content="whenever")
    ctx_args = {"kind": COMMITMENT_KIND, "content": "send the recap", "due_at": "2025-03-31T07:00:00Z"}
    from skills import SkillContext, check_arguments

    registry = default_registry(app_skills=False)
    spec = registry.tool("memory", "write")
    ctx = SkillContext(store=store, tenant=TENANT, app=APP, agent=AGENT, now=FRI_BERLIN, idempotency_key="k/1")
    await spec.handler(ctx, check_arguments(spec, ctx_args))
    [written] = [e for e in await commitments(store) if e["content"] == "send the recap"]
    assert written["expires_at"] == "2025-04-07T07:00:00Z"

    assert await fed(store, 1, FRI_BERLIN) == ["whenever"]
    assert await fed(store, 2, utc("2025-03-31T07:00:00Z")) == ["whenever", "send the recap"]  # oldest due first

    # The agent can also close one itself; memory.query hides done entries unless asked.
    query = registry.tool("memory", "query")
    mark = registry.tool("memory", "mark_done")
    [whenever] = [e for e in await commitments(store) if e["content"] == "whenever"]
    assert await mark.handler(ctx, {"ids": [whenever["id"], 999_999]}) == {"done": [whenever["id"]],
                                                                          "not_found": [999_999]}
    visible = await query.handler(ctx, {"kind": COMMITMENT_KIND})
    assert [e["content"] for e in visible] == ["send the recap"]
    assert len(await query.handler(ctx, {"kind": COMMITMENT_KIND, "include_done": True})) == 2

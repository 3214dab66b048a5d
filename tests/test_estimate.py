"""providers.estimate: input-token estimates before a call, per provider, erring high.

Anthropic goes through the REAL anthropic SDK over HTTP to the loopback server's count-tokens
endpoint (drills/provider_server.py); OpenAI through tiktoken with the bundled cl100k_base (no
network: this machine and CI have none); the offline provider by the local rule, computed by hand.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import uuid
from collections.abc import Iterator

import pytest
import tiktoken

from contract.llm import ChatMessage, LlmRequest, ToolCall, ToolDef
from drills.provider_server import ProviderServer, error_reply, loopback_token_count, text_reply
from providers import format_rows
from providers.anthropic_provider import to_anthropic_messages, to_anthropic_tools
from providers.estimate import (
    ANTHROPIC_MARGIN_PERCENT,
    FALLBACK_ENCODING,
    OPENAI_MARGIN_PERCENT,
    estimate_input_tokens,
    local_estimate,
    openai_encoding,
    openai_encoding_name,
)

KEY = "hb-estimate-key-0123456789abcdef"
PROVIDER_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY",
                     "OPENAI_BASE_URL")

SYSTEM = "You watch the KPIs of acme. Answer HEARTBEAT_OK when nothing needs attention."
KNOWN_TEXT = (
    "Signups grew by 12 percent this week while churn stayed flat. The spring campaign is active with a "
    "budget of 1,200 USD; the newsletter open rate fell to 31 percent. Flag anything that needs attention "
    'before Friday\'s review.\n<rows count="2" truncated="false">\n'
    '[{"metric":"signups","value":182,"target":250},{"name":"spring","status":"active","budget":1200}]\n</rows>'
)
RECORDS_QUERY = ToolDef(
    name="records__query",
    description="Query the app's records by type.",
    parameters={"type": "object", "properties": {"record_type": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["record_type"]},
)
TURN = [
    ChatMessage(role="user", content=KNOWN_TEXT),
    ChatMessage(role="assistant", content="Let me look.",
                tool_calls=[ToolCall(id="toolu_01", name="records__query", arguments={"record_type": "kpi"})]),
    ChatMessage(role="tool", tool_call_id="toolu_01", content='[{"metric":"signups","value":182}]'),
]


def request(provider: str, model: str, messages: list[ChatMessage] | None = None, **kw: object) -> LlmRequest:
    return LlmRequest(provider=provider, model=model, system=kw.pop("system", SYSTEM),  # type: ignore[arg-type]
                      messages=messages if messages is not None else [ChatMessage(role="user", content=KNOWN_TEXT)],
                      **kw)


def within_margin(estimate: int, exact: int, percent: int) -> bool:
    """The stated tolerance: never below the exact count, at most `percent` (rounded up) above it."""
    return exact <= estimate <= exact + math.ceil(exact * percent / 100)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key or endpoint of the developer's machine reaches these tests (or the network)."""
    for name in PROVIDER_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------------------ OpenAI


def cookbook_count(encoding: tiktoken.Encoding, *texts: str, messages: int) -> int:
    """OpenAI's cookbook by hand: every field value encoded, 3 per message, 3 for the reply's priming."""
    return sum(len(encoding.encode(text)) for text in texts) + 3 * messages + 3


async def test_openai_estimate_is_within_tolerance_of_tiktoken_exact_count() -> None:
    """gpt-4 is cl100k_base, taken from the bundled copy: the count is exact, the estimate 10% above."""
    encoding = tiktoken.get_encoding(FALLBACK_ENCODING)
    exact = cookbook_count(encoding, "system", SYSTEM, "user", KNOWN_TEXT, messages=2)
    assert exact == 122  # measured: pins the arithmetic of this test, so a change in it shows
    estimate = await estimate_input_tokens(request("openai", "gpt-4"))
    assert within_margin(estimate, exact, OPENAI_MARGIN_PERCENT)
    assert estimate == 122 + 13


async def test_openai_estimate_counts_tool_calls_results_and_definitions() -> None:
    encoding = tiktoken.get_encoding(FALLBACK_ENCODING)
    arguments = json.dumps([{"id": "toolu_01", "type": "function",
                             "function": {"name": "records__query", "arguments": '{"record_type":"kpi"}'}}],
                           separators=(",", ":"))
    tools = json.dumps([{"type": "function", "function": {"name": RECORDS_QUERY.name,
                                                          "description": RECORDS_QUERY.description,
                                                          "parameters": RECORDS_QUERY.parameters}}],
                       separators=(",", ":"))
    exact = cookbook_count(encoding, "system", SYSTEM, "user", KNOWN_TEXT, "assistant", "Let me look.", arguments,
                           "tool", "toolu_01", '[{"metric":"signups","value":182}]', tools, messages=4)
    estimate = await estimate_input_tokens(request("openai", "gpt-4", TURN, tools=[RECORDS_QUERY]))
    assert within_margin(estimate, exact, OPENAI_MARGIN_PERCENT)


async def test_openai_model_encoding_or_the_bundled_one() -> None:
    """gpt-4o-mini wants o200k_base, which tiktoken would download: offline the bundled cl100k_base
    stands in. Either way the estimate is within tolerance of the count under the encoding used."""
    assert openai_encoding_name("gpt-4o-mini") == "o200k_base"
    assert openai_encoding_name("gpt-4") == FALLBACK_ENCODING  # same ranks as cl100k_base, no download
    assert openai_encoding_name("llama3.2") == FALLBACK_ENCODING  # a self-hosted model tiktoken does not know
    encoding = await openai_encoding("gpt-4o-mini", timeout=30)
    assert encoding.name in ("o200k_base", FALLBACK_ENCODING)
    exact = cookbook_count(encoding, "system", SYSTEM, "user", KNOWN_TEXT, messages=2)
    estimate = await estimate_input_tokens(request("openai", "gpt-4o-mini"), timeout=30)
    assert within_margin(estimate, exact, OPENAI_MARGIN_PERCENT)


async def test_openai_text_that_spells_a_special_token_is_counted_not_refused() -> None:
    plain = await estimate_input_tokens(request("openai", "gpt-4", [ChatMessage(role="user", content="end")]))
    special = await estimate_input_tokens(request("openai", "gpt-4", [ChatMessage(role="user",
                                                                                  content="end<|endoftext|>")]))
    assert special > plain


async def test_openai_request_the_conversion_refuses_falls_back_to_the_local_rule() -> None:
    orphan = [ChatMessage(role="tool", content="42")]  # no tool_call_id: the call itself will refuse it
    assert await estimate_input_tokens(request("openai", "gpt-4", orphan)) == local_estimate(
        request("openai", "gpt-4", orphan))


# ------------------------------------------------------------------------------------ Anthropic


@pytest.fixture(scope="module")
def running_server() -> Iterator[ProviderServer]:
    with ProviderServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def server(running_server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> ProviderServer:
    running_server.reset()
    for name, value in running_server.env(key=KEY).items():
        monkeypatch.setenv(name, value)
    return running_server


async def test_anthropic_estimate_is_the_count_endpoint_plus_margin(server: ProviderServer) -> None:
    req = request("anthropic", "claude-haiku-5-5", TURN, tools=[RECORDS_QUERY])
    estimate = await estimate_input_tokens(req)

    [sent] = server.requests_to("anthropic_count")
    assert sent.method == "POST" and sent.path == "/v1/messages/count_tokens"
    assert sent.api_key == KEY
    # The call's own conversion: what the count sees is what the call will send.
    breakpoint_ = {"type": "ephemeral"}  # the call's prompt-cache breakpoints are counted as sent
    assert sent.body == {"model": "claude-haiku-5-5",
                         "system": [{"type": "text", "text": SYSTEM, "cache_control": breakpoint_}],
                         "messages": to_anthropic_messages(TURN),
                         "tools": [{**tool, "cache_control": breakpoint_} for tool in to_anthropic_tools([RECORDS_QUERY])]}
    counted = loopback_token_count(sent.body)
    assert counted > 100
    assert estimate == counted + math.ceil(counted * ANTHROPIC_MARGIN_PERCENT / 100)
    assert server.requests_to("anthropic") == []  # counted, not called


async def test_anthropic_scripted_count(server: ProviderServer) -> None:
    server.script_anthropic_count(text_reply("", tokens_in=2_000))
    assert await estimate_input_tokens(request("anthropic", "claude-sonnet-5-5")) == 2_100
    assert server.pending("anthropic_count") == 0


@pytest.mark.parametrize("status", [404, 500])
async def test_anthropic_count_error_falls_back_to_the_local_rule(
    server: ProviderServer, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """A compatible server without the endpoint (404), or one failing (500): the local rule, a warning."""
    server.script_anthropic_count(error_reply(status, f"count_tokens says no to {KEY}"))
    req = request("anthropic", "claude-haiku-5-5", TURN, tools=[RECORDS_QUERY])
    with caplog.at_level(logging.DEBUG, logger="providers.estimate"):
        estimate = await estimate_input_tokens(req)

    assert estimate == local_estimate(req)
    assert len(server.requests_to("anthropic_count")) == 1  # the SDK client never retries
    [record] = [r for r in caplog.records if r.name == "providers.estimate"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert f"HTTP {status}" in message and server.anthropic_base_url in message
    assert KEY not in caplog.text


async def test_anthropic_fallback_warns_once_per_endpoint_and_reason(
    server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script_anthropic_count(error_reply(405), error_reply(405))
    with caplog.at_level(logging.DEBUG, logger="providers.estimate"):
        for _ in range(2):
            await estimate_input_tokens(request("anthropic", "claude-haiku-5-5"))
    levels = [r.levelno for r in caplog.records if r.name == "providers.estimate"]
    assert levels == [logging.WARNING, logging.DEBUG]


async def test_anthropic_unreachable_or_unconfigured_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    req = request("anthropic", "claude-haiku-5-5")
    assert await estimate_input_tokens(req) == local_estimate(req)  # no key, no base URL
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert await estimate_input_tokens(req, timeout=5) == local_estimate(req)


# ------------------------------------------------------------------------------------ the local rule


async def test_offline_local_rule_by_hand() -> None:
    req = LlmRequest(
        provider="offline",
        model="offline-cheap",
        system="Be brief.",  # 9 bytes
        messages=[
            ChatMessage(role="user", content="Grüße!"),  # 8 bytes: ü and ß are 2 each
            # "c1" + "kv__get" + '{"key":"a"}': 2 + 7 + 11 = 20 bytes
            ChatMessage(role="assistant", tool_calls=[ToolCall(id="c1", name="kv__get", arguments={"key": "a"})]),
            ChatMessage(role="tool", tool_call_id="c1", content="42"),  # 2 + 2 = 4 bytes
        ],
        # "kv__get" + "Read a key." + '{"type":"object"}': 7 + 11 + 17 = 35 bytes
        tools=[ToolDef(name="kv__get", description="Read a key.", parameters={"type": "object"})],
    )
    # 76 bytes -> ceil(76 / 2) = 38; 3 messages + the system prompt -> 4 * 4 = 16; + 3
    assert local_estimate(req) == 38 + 16 + 3 == 57
    assert await estimate_input_tokens(req) == 57


@pytest.mark.parametrize("text", [
    KNOWN_TEXT,
    format_rows([{"metric": "signups", "value": 182 + i, "updated_at": f"2025-01-{i + 1:02d}T10:{i:02d}:00Z"}
                 for i in range(20)], truncated=False),
    format_rows([{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))), "status": "open", "amount": 10.5 * i} for i in range(20)],
                truncated=False),
    "今日は会議があります。売上は前年比で十二パーセント増加しました。来週までに報告書を提出してください。",
    "Die Überweisungsbestätigung liegt auf dem Küchentisch neben der Donaudampfschifffahrtskapitänsmütze.",
])  # fmt: skip
def test_local_rule_errs_high_against_cl100k(text: str) -> None:
    """Prose, JSON rows with timestamps or uuids, CJK, German: the local rule is above the exact cl100k count."""
    encoding = tiktoken.get_encoding(FALLBACK_ENCODING)
    req = request("offline", "offline-cheap", [ChatMessage(role="user", content=text)])
    assert local_estimate(req) >= cookbook_count(encoding, "system", SYSTEM, "user", text, messages=2)

"""Providers through the REAL anthropic and openai SDK clients, over HTTP, against tests/provider_server.py.

No Python mock of our provider classes: every request below leaves the SDK as HTTP and every answer
is parsed by the SDK from the wire, so the request shape, tool use, usage and the error mapping are
what a real provider would see and give.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

import providers
from drills.provider_server import ProviderServer, Reply, error_reply, text_reply, tool_reply
from providers import (
    DEFAULT_MODELS,
    ERROR_PROVIDER_AUTH,
    ERROR_PROVIDER_BAD_REQUEST,
    ERROR_PROVIDER_NOT_CONFIGURED,
    ERROR_PROVIDER_UNAVAILABLE,
    NON_RETRYABLE_PROVIDER_ERRORS,
    PROVIDERS,
    TIERS,
    Caller,
    ChatMessage,
    LlmRequest,
    LlmResponse,
    ToolCall,
    ToolDef,
    call_llm,
    default_provider,
    extract_rows,
    format_rows,
    resolve_for_tenant,
    resolve_model,
)
from providers.anthropic_provider import PROVIDER_BLOCKS_FIELD
from providers.base import PLACEHOLDER_KEY, Credentials, _clients
from providers.errors import MAX_RETRY_AFTER_SECONDS, parse_retry_after, redact
from providers.openai_provider import output_cap_param

KEY = "hb-test-key-0123456789abcdef"  # not key-shaped: redaction must work on the exact value too
WRONG_KEYS = ("hb-wrong-key-9876543210fedcba", "sk-ant-api03-WRONGwrongWRONG0123456789")
SDK_PROVIDERS = ("anthropic", "openai")
PROVIDER_ENV_VARS = (
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
    "ANTHROPIC_CUSTOM_HEADERS", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL",
    "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
)  # fmt: skip

CALLER = Caller(tenant="acme", app="marketing", agent="cmo", workflow_id="heartbeat:acme:marketing:cmo:kpi",
                purpose="tick")


async def complete(request: LlmRequest, **options: Any) -> LlmResponse:
    """One call through the gateway, as the agent turn makes it."""
    return await call_llm(request, caller=CALLER, **options)


SYSTEM = "You watch the KPIs of acme. Answer HEARTBEAT_OK when nothing needs attention."
RECORDS_QUERY = ToolDef(
    name="records__query",
    description="Query the app's records by type.",
    parameters={
        "type": "object",
        "properties": {"record_type": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["record_type"],
    },
)
EMAIL_SEND = ToolDef(
    name="email__send",
    description="Queue an email in the outbox.",
    parameters={"type": "object", "properties": {"to": {"type": "string"}, "body": {"type": "string"}}},
)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key or endpoint of the developer's machine reaches these tests (or the network)."""
    for name in PROVIDER_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def running_server() -> Iterator[ProviderServer]:
    with ProviderServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def server(running_server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> ProviderServer:
    """The loopback provider, emptied, with both SDKs' variables pointing at it."""
    running_server.reset()
    for name, value in running_server.env(key=KEY).items():
        monkeypatch.setenv(name, value)
    return running_server


def script(server: ProviderServer, provider: str, *replies: Any) -> None:
    getattr(server, f"script_{provider}")(*replies)


def request(provider: str, messages: list[ChatMessage] | None = None, **kw: Any) -> LlmRequest:
    fields: dict[str, Any] = dict(
        provider=provider,
        model=DEFAULT_MODELS[provider]["cheap"],  # type: ignore[index]
        system=SYSTEM,
        messages=messages or [ChatMessage(role="user", content="Rows: none. Anything to report?")],
        tools=[RECORDS_QUERY, EMAIL_SEND],
        max_tokens=256,
    )
    return LlmRequest(**(fields | kw))


def multi_step_turn() -> list[ChatMessage]:
    """A turn that already ran one tool call: user, assistant tool_use, tool result."""
    return [
        ChatMessage(role="user", content="Check the active campaigns."),
        ChatMessage(
            role="assistant",
            content="Looking them up.",
            tool_calls=[ToolCall(id="call_1", name="records__query", arguments={"record_type": "campaign"})],
        ),
        ChatMessage(role="tool", tool_call_id="call_1", content='[{"name": "spring", "status": "active"}]'),
    ]


async def failure(req: LlmRequest, **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await complete(req, **kw)
    return caught.value


# ---------------------------------------------------------------------------- request shape


async def test_anthropic_request_shape(server: ProviderServer) -> None:
    server.script_anthropic(text_reply("HEARTBEAT_OK"))
    await complete(request("anthropic", multi_step_turn()))
    [sent] = server.requests_to("anthropic")
    assert sent.path == "/v1/messages"
    assert sent.api_key == KEY and "anthropic-version" in sent.headers  # this SDK sends it as a bearer token
    assert sent.headers.get("x-stainless-retry-count", "0") == "0"
    body = sent.body
    assert (body["model"], body["max_tokens"]) == ("claude-haiku-5-5", 256)
    # The system prompt and the last tool are prompt-cache breakpoints (what repeats tick after tick).
    assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in tool for tool in body["tools"][:-1])
    assert body["messages"] == [
        {"role": "user", "content": "Check the active campaigns."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking them up."},
                {"type": "tool_use", "id": "call_1", "name": "records__query", "input": {"record_type": "campaign"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '[{"name": "spring", "status": "active"}]'}
            ],
        },
    ]
    assert [{k: v for k, v in tool.items() if k != "cache_control"} for tool in body["tools"]] == [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in (RECORDS_QUERY, EMAIL_SEND)
    ]
    assert "stream" not in body or body["stream"] is False


async def test_anthropic_marks_the_end_of_the_stored_conversation_for_the_prompt_cache(server: ProviderServer) -> None:
    from providers.anthropic_provider import cached_messages

    history = [ChatMessage(role="user", content="(an earlier heartbeat tick)"),
               ChatMessage(role="assistant", content="Yesterday: drafted the launch post.")]
    sent = cached_messages([*history, ChatMessage(role="user", content="Today's records.")], prefix=len(history))
    assert sent == [
        {"role": "user", "content": "(an earlier heartbeat tick)"},
        {"role": "assistant", "content": [{"type": "text", "text": "Yesterday: drafted the launch post.",
                                           "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Today's records."},
    ]
    # No stored conversation: no breakpoint in the messages (the system prompt and tools keep theirs).
    assert cached_messages([ChatMessage(role="user", content="Hi")], prefix=0) == [{"role": "user", "content": "Hi"}]


async def test_anthropic_merges_parallel_tool_results_into_one_user_message(server: ProviderServer) -> None:
    server.script_anthropic(text_reply("Done."))
    calls = [
        ToolCall(id="toolu_a", name="records__query", arguments={"record_type": "kpi"}),
        ToolCall(id="toolu_b", name="email__send", arguments={"to": "cmo@acme.test", "body": "hi"}),
    ]
    await complete(request("anthropic", [
        ChatMessage(role="user", content="Go."),
        ChatMessage(role="assistant", tool_calls=calls),
        ChatMessage(role="tool", tool_call_id="toolu_a", content="[]"),
        ChatMessage(role="tool", tool_call_id="toolu_b", content='{"queued": true}'),
        ChatMessage(role="user", content="Now summarise."),
    ], system=""))  # fmt: skip
    body = server.requests_to("anthropic")[0].body
    assert "system" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
    assert [b["type"] for b in assistant] == ["tool_use", "tool_use"]  # no empty text block
    assert [b.get("tool_use_id", b["type"]) for b in results] == ["toolu_a", "toolu_b", "text"]


async def test_openai_request_shape(server: ProviderServer) -> None:
    server.script_openai(text_reply("HEARTBEAT_OK"))
    await complete(request("openai", multi_step_turn()))
    [sent] = server.requests_to("openai")
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "gpt-6-luna"
    assert body["max_tokens"] == 256 and "max_completion_tokens" not in body  # a compatible server
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Check the active campaigns."},
        {
            "role": "assistant",
            "content": "Looking them up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "records__query", "arguments": '{"record_type":"campaign"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '[{"name": "spring", "status": "active"}]'},
    ]
    assert body["tools"] == [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in (RECORDS_QUERY, EMAIL_SEND)
    ]


async def test_openai_assistant_with_only_tool_calls_sends_null_content(server: ProviderServer) -> None:
    server.script_openai(text_reply("ok"))
    await complete(request("openai", [
        ChatMessage(role="user", content="Go."),
        ChatMessage(role="assistant", tool_calls=[ToolCall(id="c1", name="records__query", arguments={})]),
        ChatMessage(role="tool", tool_call_id="c1", content="[]"),
    ], system="", tools=[]))  # fmt: skip
    body = server.requests_to("openai")[0].body
    assert body["messages"][0] == {"role": "user", "content": "Go."}  # no empty system message
    assert body["messages"][1]["content"] is None
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert "tools" not in body


def test_openai_output_cap_parameter_depends_on_the_endpoint() -> None:
    assert output_cap_param(None) == "max_completion_tokens"
    assert output_cap_param("https://api.openai.com/v1") == "max_completion_tokens"
    assert output_cap_param("http://localhost:11434/v1") == "max_tokens"


# -------------------------------------------------------------------------------- responses


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_text_reply_with_usage(server: ProviderServer, provider: str) -> None:
    script(server, provider, text_reply("Signups are 27% under target.", tokens_in=321, tokens_out=12))
    response = await complete(request(provider))
    assert response == LlmResponse(
        text="Signups are 27% under target.",
        stop_reason="end_turn",
        provider=provider,
        model=DEFAULT_MODELS[provider]["cheap"],
        tokens_in=321,
        tokens_out=12,
    )


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_tool_use_reply_is_parsed_into_tool_calls(server: ProviderServer, provider: str) -> None:
    script(server, provider, tool_reply(
        ("id_q", "records__query", {"record_type": "kpi", "limit": 5}),
        ("id_e", "email__send", {"to": "cmo@acme.test", "body": "Signups fell — 40%."}),
        text="Let me look.", tokens_in=50, tokens_out=30,
    ))  # fmt: skip
    response = await complete(request(provider))
    assert response.tool_calls == [
        ToolCall(id="id_q", name="records__query", arguments={"record_type": "kpi", "limit": 5}),
        ToolCall(id="id_e", name="email__send", arguments={"to": "cmo@acme.test", "body": "Signups fell — 40%."}),
    ]
    assert (response.text, response.stop_reason, response.tokens_in, response.tokens_out) == (
        "Let me look.", "tool_use", 50, 30,
    )  # fmt: skip


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_a_tool_round_trip_over_two_calls(server: ProviderServer, provider: str) -> None:
    """The agent loop as the workflow runs it: call, execute the tool, send the result, get the answer."""
    script(server, provider, tool_reply(("records__query", {"record_type": "kpi"})), text_reply("All on target."))
    messages = [ChatMessage(role="user", content="Check the KPIs.")]
    first = await complete(request(provider, messages))
    [call] = first.tool_calls
    messages += [
        ChatMessage(role="assistant", content=first.text, tool_calls=first.tool_calls),
        ChatMessage(role="tool", tool_call_id=call.id, content='[{"metric": "signups", "value": 250}]'),
    ]
    second = await complete(request(provider, messages))
    assert (second.text, second.tool_calls, second.stop_reason) == ("All on target.", [], "end_turn")
    last_body = server.requests_to(provider)[-1].body
    wire = json.dumps(last_body["messages"])
    assert call.id in wire and '\\"signups\\"' in wire  # the tool result went back under the model's id


@pytest.mark.parametrize(("provider", "raw_stop", "stop"), [
    ("anthropic", "max_tokens", "max_tokens"),
    ("openai", "length", "max_tokens"),
    ("anthropic", "refusal", "refusal"),
    ("openai", "content_filter", "refusal"),
    ("anthropic", "stop_sequence", "end_turn"),
])  # fmt: skip
async def test_stop_reasons_are_normalised(server: ProviderServer, provider: str, raw_stop: str, stop: str) -> None:
    script(server, provider, text_reply("cut of", stop=raw_stop))
    assert (await complete(request(provider))).stop_reason == stop


async def test_openai_compatible_server_saying_stop_with_tool_calls_is_tool_use(server: ProviderServer) -> None:
    server.script_openai(tool_reply(("records__query", {"record_type": "kpi"}), stop="stop"))
    assert (await complete(request("openai"))).stop_reason == "tool_use"


async def test_openai_usage_missing_counts_zero(server: ProviderServer) -> None:
    body = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }  # fmt: skip
    server.script_openai(Reply(raw_body=json.dumps(body).encode()))
    response = await complete(request("openai", model="llama3.2"))
    assert (response.text, response.model, response.tokens_in, response.tokens_out) == ("hi", "llama3.2", 0, 0)


async def test_openai_malformed_tool_arguments_are_retryable(server: ProviderServer) -> None:
    body = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                     "tool_calls": [{"id": "c", "type": "function",
                                     "function": {"name": "records__query", "arguments": "{not json"}}]}}],
    }  # fmt: skip
    server.script_openai(Reply(raw_body=json.dumps(body).encode()))
    error = await failure(request("openai"))
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_UNAVAILABLE, False)
    assert "not JSON" in error.message


async def test_anthropic_thinking_blocks_do_not_leak_into_text_and_are_replayed_when_supported(
    server: ProviderServer,
) -> None:
    thinking = {"type": "thinking", "thinking": "", "signature": "sig-abc"}
    server.script_anthropic(
        tool_reply(("toolu_t", "records__query", {"record_type": "kpi"}), extra_blocks=(thinking,)),
        text_reply("Done."),
    )
    first = await complete(request("anthropic"))
    assert (first.text, [c.id for c in first.tool_calls]) == ("", ["toolu_t"])
    if PROVIDER_BLOCKS_FIELD not in LlmResponse.model_fields:
        return  # the contract does not carry provider blocks (yet): they are dropped
    assert getattr(first, PROVIDER_BLOCKS_FIELD) == [thinking]
    assistant = ChatMessage(role="assistant", tool_calls=first.tool_calls,
                            **{PROVIDER_BLOCKS_FIELD: getattr(first, PROVIDER_BLOCKS_FIELD)})  # fmt: skip
    await complete(request("anthropic", [
        ChatMessage(role="user", content="Go."), assistant,
        ChatMessage(role="tool", tool_call_id="toolu_t", content="[]"),
    ]))  # fmt: skip
    replayed = server.requests_to("anthropic")[-1].body["messages"][1]["content"]
    assert [b["type"] for b in replayed] == ["thinking", "tool_use"]


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
@pytest.mark.parametrize("wrong_key", WRONG_KEYS)
async def test_401_is_a_non_retryable_auth_error_that_never_shows_the_key(
    server: ProviderServer, provider: str, wrong_key: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY", wrong_key)
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' and httpx's included
    error = await failure(request(provider))
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_AUTH, True)
    assert error.type in NON_RETRYABLE_PROVIDER_ERRORS
    assert "401" in error.message and "Incorrect API key provided" in error.message
    assert server.requests_to(provider)[-1].api_key == wrong_key  # the server did get (and echo) it
    everything = " ".join([str(error), error.message, repr(error.details), caplog.text])
    assert wrong_key not in everything and wrong_key[-12:] not in everything
    assert error.__cause__ is None  # the SDK exception (which quotes the body) is not chained into history
    assert len(server.requests_to(provider)) == 1  # max_retries=0: the SDK did not retry


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
@pytest.mark.parametrize(("status", "expected"), [
    (400, ERROR_PROVIDER_BAD_REQUEST),
    (403, ERROR_PROVIDER_AUTH),
    (404, ERROR_PROVIDER_BAD_REQUEST),
    (413, ERROR_PROVIDER_BAD_REQUEST),
    (422, ERROR_PROVIDER_BAD_REQUEST),
])  # fmt: skip
async def test_permanent_statuses_are_non_retryable(
    server: ProviderServer, provider: str, status: int, expected: str
) -> None:
    script(server, provider, error_reply(status, "model: unknown model 'nope'"))
    error = await failure(request(provider))
    assert (error.type, error.non_retryable, error.next_retry_delay) == (expected, True, None)
    assert f"HTTP {status}" in error.message and "unknown model 'nope'" in error.message
    assert error.details == ({"provider": provider, "status": status},)
    assert len(server.requests_to(provider)) == 1


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
@pytest.mark.parametrize(("status", "retry_after", "delay"), [
    (429, "7", timedelta(seconds=7)),
    (429, "0.5", timedelta(seconds=0.5)),
    (429, "86400", timedelta(seconds=MAX_RETRY_AFTER_SECONDS)),  # capped
    (429, None, None),
    (500, None, None),
    (503, "3", timedelta(seconds=3)),
    (529, None, None),
    (408, None, None),
])  # fmt: skip
async def test_rate_limits_and_server_errors_are_retryable_and_honour_retry_after(
    server: ProviderServer, provider: str, status: int, retry_after: str | None, delay: timedelta | None
) -> None:
    script(server, provider, error_reply(status, "slow down", retry_after=retry_after))
    error = await failure(request(provider))
    assert (error.type, error.non_retryable, error.next_retry_delay) == (ERROR_PROVIDER_UNAVAILABLE, False, delay)
    assert error.type not in NON_RETRYABLE_PROVIDER_ERRORS
    assert len(server.requests_to(provider)) == 1  # Temporal retries, not the SDK


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_retry_after_as_an_http_date(server: ProviderServer, provider: str) -> None:
    script(server, provider, error_reply(429, retry_after=email.utils.formatdate(time.time() + 30, usegmt=True)))
    error = await failure(request(provider))
    assert error.next_retry_delay is not None
    assert 25 <= error.next_retry_delay.total_seconds() <= 31


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_retry_after_ms_wins(server: ProviderServer, provider: str) -> None:
    script(server, provider, error_reply(429, headers={"retry-after-ms": "1500", "retry-after": "9"}))
    assert (await failure(request(provider))).next_retry_delay == timedelta(seconds=1.5)


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_timeout_is_retryable(server: ProviderServer, provider: str) -> None:
    script(server, provider, text_reply("late", delay=1.0))
    error = await failure(request(provider), timeout=0.2)
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_UNAVAILABLE, False)
    assert "timed out" in error.message


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_connection_refused_is_retryable(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prefix = provider.upper()
    monkeypatch.setenv(f"{prefix}_API_KEY", KEY)
    monkeypatch.setenv(f"{prefix}_BASE_URL", f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else ""))
    error = await failure(request(provider), timeout=5)
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_UNAVAILABLE, False)
    assert "connect" in error.message


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_a_malformed_body_is_retryable(server: ProviderServer, provider: str) -> None:
    script(server, provider, Reply(raw_body=b"<html>bad gateway</html>"))
    error = await failure(request(provider))
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_UNAVAILABLE, False)


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_no_key_and_no_base_url_is_not_configured(provider: str) -> None:
    error = await failure(request(provider))
    assert (error.type, error.non_retryable) == (ERROR_PROVIDER_NOT_CONFIGURED, True)
    assert f"{provider.upper()}_API_KEY" in error.message


@pytest.mark.parametrize("provider", SDK_PROVIDERS)
async def test_a_base_url_without_a_key_is_a_self_hosted_endpoint(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ProviderServer() as local:  # like Ollama: no key required
        script(local, provider, text_reply("HEARTBEAT_OK"))
        monkeypatch.setenv(f"{provider.upper()}_BASE_URL", local.env()[f"{provider.upper()}_BASE_URL"])
        assert (await complete(request(provider))).text == "HEARTBEAT_OK"
        assert local.requests[0].api_key == PLACEHOLDER_KEY


async def test_one_client_per_base_url_and_key_is_reused(server: ProviderServer, monkeypatch) -> None:
    server.script_openai(text_reply("a"), text_reply("b"), text_reply("c"))
    await complete(request("openai"))
    await complete(request("openai"))
    per_loop = _clients[asyncio.get_running_loop()]
    fingerprint = Credentials(key=KEY, base_url=None).fingerprint
    openai_clients = [key for key in per_loop if key == ("openai", server.openai_base_url, fingerprint)]
    assert len(openai_clients) == 1
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url + "/")  # another base URL: another client
    await complete(request("openai"))
    assert ("openai", server.openai_base_url + "/", fingerprint) in per_loop
    assert all(KEY not in repr(key) for key in per_loop)  # the cache key holds a fingerprint, not the key


# ---------------------------------------------------------------------------------- redaction


def test_redact_removes_configured_keys_and_key_shaped_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-secret-value")
    text = redact(
        "got plain-secret-value, sk-proj-abc123XYZ, sk-ab***yz, Bearer tok123 and x-api-key: k-9 and other-thing",
        "other-thing",
    )
    for secret in ("plain-secret-value", "sk-proj-abc123XYZ", "sk-ab***yz", "tok123", "k-9", "other-thing"):
        assert secret not in text
    assert text.count("[redacted]") == 6


@pytest.mark.parametrize(("headers", "seconds"), [
    ({}, None),
    ({"retry-after": "12"}, 12.0),
    ({"retry-after": "-3"}, None),
    ({"retry-after": "0"}, None),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "nan"}, None),
    ({"retry-after": "inf"}, MAX_RETRY_AFTER_SECONDS),
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, None),  # in the past
])  # fmt: skip
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    now = email.utils.mktime_tz(email.utils.parsedate_tz("Wed, 21 Oct 2015 07:28:00 GMT"))
    assert parse_retry_after(headers, now=now) == seconds


# ------------------------------------------------------------------------------------ routing


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "offline"),
    ({"ANTHROPIC_API_KEY": "a"}, "anthropic"),
    ({"OPENAI_API_KEY": "o"}, "openai"),
    ({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, "anthropic"),
    ({"OPENAI_BASE_URL": "http://localhost:11434/v1"}, "openai"),
    ({"ANTHROPIC_BASE_URL": "http://localhost:8080"}, "anthropic"),
    ({"ANTHROPIC_BASE_URL": "http://localhost:8080", "OPENAI_API_KEY": "o"}, "openai"),
    ({"ANTHROPIC_API_KEY": "   "}, "offline"),  # blank is unset
])  # fmt: skip
def test_default_provider(env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_provider() == expected


def test_default_models_cover_every_provider_and_tier() -> None:
    assert set(DEFAULT_MODELS) == set(PROVIDERS)
    for provider, models in DEFAULT_MODELS.items():
        assert set(models) == set(TIERS) and len(set(models.values())) == 3, provider
    assert DEFAULT_MODELS["anthropic"] == {
        "cheap": "claude-haiku-5-5", "standard": "claude-sonnet-5-5", "premium": "claude-opus-5-5",
    }  # fmt: skip
    assert DEFAULT_MODELS["offline"]["cheap"] == "offline-cheap"


def test_resolve_model_without_tenant_settings_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    none = {"cheap": None, "standard": None, "premium": None}
    assert resolve_model(tier="premium", tenant_provider=None, tenant_models=none) == ("offline", "offline-premium")
    monkeypatch.setenv("OPENAI_API_KEY", "o")
    assert resolve_model(tier="cheap", tenant_provider=None, tenant_models=none) == ("openai", "gpt-6-luna")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a")
    assert resolve_model(tier="standard", tenant_provider=None, tenant_models={}) == ("anthropic", "claude-sonnet-5-5")


def test_resolve_model_prefers_the_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a")
    models = {"cheap": "llama3.2", "standard": None, "premium": "  "}
    assert resolve_model(tier="cheap", tenant_provider="openai", tenant_models=models) == ("openai", "llama3.2")
    assert resolve_model(tier="standard", tenant_provider="openai", tenant_models=models) == ("openai", "gpt-6.2-sol")
    assert resolve_model(tier="premium", tenant_provider="openai", tenant_models=models) == ("openai", "gpt-6.2-astra")
    assert resolve_model(tier="cheap", tenant_provider="offline", tenant_models={}) == ("offline", "offline-cheap")


def test_resolve_for_a_store_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    from store.models import Tenant

    now = datetime.now(UTC)
    tenant = Tenant(id="acme", timezone="UTC", provider="anthropic", model_cheap="claude-haiku-4-5",
                    model_standard=None, model_premium=None, created_at=now, updated_at=now)
    assert resolve_for_tenant(tenant, "cheap") == ("anthropic", "claude-haiku-4-5")
    assert resolve_for_tenant(tenant, "premium") == ("anthropic", "claude-opus-5-5")
    assert resolve_for_tenant(None, "standard") == ("offline", "offline-standard")


@pytest.mark.parametrize(("tier", "provider"), [("cheap", "mistral"), ("ultra", None)])
def test_resolve_model_refuses_unknown_names(tier: Any, provider: str | None) -> None:
    with pytest.raises(ApplicationError) as caught:
        resolve_model(tier=tier, tenant_provider=provider, tenant_models={})
    assert (caught.value.type, caught.value.non_retryable) == (ERROR_PROVIDER_NOT_CONFIGURED, True)


# ------------------------------------------------------------------------------------ offline

ROWS = [
    {"metric": "signups", "value": 182, "target": 250, "updated_at": "2025-03-01T08:00:00Z"},
    {"name": "spring", "status": "active", "budget": 1200},
    {"title": "Churn note", "body": "x" * 200},
    {"id": 4},
]


def offline_request(content: str, **kw: Any) -> LlmRequest:
    return LlmRequest(provider="offline", model="offline-cheap", system=SYSTEM,
                      messages=[ChatMessage(role="user", content=content)], **kw)  # fmt: skip


async def test_offline_says_heartbeat_ok_when_there_are_no_rows() -> None:
    for content in (f"Daily check.\n{format_rows([], truncated=False)}", "Daily check, no rows block at all."):
        response = await complete(offline_request(content))
        assert (response.text, response.provider, response.model, response.tool_calls) == (
            "HEARTBEAT_OK", "offline", "offline-cheap", [],
        )  # fmt: skip


async def test_offline_summarises_the_rows() -> None:
    response = await complete(offline_request(f"Check the KPIs.\n\n{format_rows(ROWS, truncated=False)}"))
    assert response.text == (
        "4 rows to review: signups: value 182, target 250; spring: status active, budget 1200; "
        f"Churn note: body {'x' * 59}…; and 1 more."
    )
    assert response.stop_reason == "end_turn"
    assert response.tokens_out == len(response.text) // 4
    content = f"Check the KPIs.\n\n{format_rows(ROWS, truncated=False)}"
    assert response.tokens_in == len(f"{SYSTEM}\n{content}") // 4  # an estimate: len // 4


async def test_offline_is_deterministic_and_reads_only_the_latest_user_message() -> None:
    messages = [
        ChatMessage(role="user", content=format_rows(ROWS, truncated=False)),
        ChatMessage(role="assistant", content="4 rows to review: ..."),
        ChatMessage(role="user", content=f"Next tick.\n{format_rows([{'name': 'solo'}], truncated=True)}"),
    ]
    req = LlmRequest(provider="offline", model="offline-premium", system="", messages=messages)
    first, second = await complete(req), await complete(req)
    assert first == second
    assert (first.text, first.model) == ("1+ rows to review: solo.", "offline-premium")


async def test_offline_truncated_with_no_rows_that_fit() -> None:
    response = await complete(offline_request(format_rows([], truncated=True)))
    assert "none fit" in response.text


async def test_offline_needs_no_key_and_makes_no_call(server: ProviderServer) -> None:
    await complete(offline_request(format_rows(ROWS, truncated=False), tools=[RECORDS_QUERY]))
    assert server.requests == []


def test_rows_block_round_trip_survives_hostile_values() -> None:
    rows = [{"note": "ends with </rows> and <rows count=\"9\">"}, {"n": 1}]
    block = format_rows(rows, truncated=True)
    assert block.count("</rows>") == 1
    assert extract_rows(f"before\n{block}\nafter") == (rows, True)
    assert extract_rows('```json\n[{"a": 1}]\n```') == ([{"a": 1}], False)
    assert extract_rows("```json\n{\"rows\": [1, 2]}\n```") == ([1, 2], False)
    assert extract_rows("nothing here") == (None, False)


def test_workflow_code_loads_no_sdk_store_or_provider() -> None:
    """The workflow modules and the contract they read must stay light: no SDK, no store, no provider."""
    import subprocess
    import sys

    code = ("import sys, contract.llm, contract.messages, workflows.heartbeat, workflows.vision;"
            " print(sorted(m for m in ('anthropic', 'openai', 'sqlalchemy', 'providers', 'store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api() -> None:
    assert callable(providers.call_llm) and callable(providers.resolve_model)
    assert set(providers.__all__) <= set(dir(providers))

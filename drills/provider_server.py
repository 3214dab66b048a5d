"""A loopback HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions wire formats.

For tests that drive the REAL `anthropic` and `openai` SDK clients (and so our providers) over HTTP,
tool use included. Standard library only: `http.server.ThreadingHTTPServer` on 127.0.0.1, a free
port, a daemon thread. Any thread or process of the test can call it (a Temporal worker included).

    with ProviderServer(api_key="test-key") as server:
        server.script_anthropic(tool_reply(("records__query", {"record_type": "kpi"})), text_reply("Done."))
        server.script_openai(error_reply(429, retry_after="7"))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)   # or server.env()
        ...
        body = server.requests_to("anthropic")[0].body

Endpoints: POST /v1/messages (Anthropic), POST /v1/chat/completions (OpenAI), POST
/v1/messages/count_tokens (Anthropic's token count); anything else is 404.
Each endpoint has its own queue of scripted replies, answered in order. A reply is a `Reply` or a
callable taking the `RecordedRequest` and returning one (for tests that do not know the number of
calls). When a queue is empty the `fallback` answers (default: a 400 naming the problem, which our
providers map to a non-retryable error, so a test that under-scripts fails fast and legibly).

The token count is the exception: unscripted, it answers `{"input_tokens": loopback_token_count(body)}`
(a deterministic count a test can recompute), so a test that never thinks of it still gets an
answer. `script_anthropic_count(error_reply(404))` makes it fail (a compatible server without the
endpoint); a scripted 200 reply answers its `tokens_in`. Its requests are recorded as api
"anthropic_count" (`requests_to("anthropic")` lists only the Messages calls).

With `api_key` set, a request carrying another key (`x-api-key` / `Authorization: Bearer`) gets
401 before the script is consulted, with a body that quotes the key it received, as OpenAI's does
(in part): error messages must not leak it.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Api = Literal["anthropic", "openai", "anthropic_count"]
ANTHROPIC_PATH = "/v1/messages"
ANTHROPIC_COUNT_PATH = "/v1/messages/count_tokens"
OPENAI_PATH = "/v1/chat/completions"
_PATHS: dict[str, Api] = {ANTHROPIC_PATH: "anthropic", OPENAI_PATH: "openai", ANTHROPIC_COUNT_PATH: "anthropic_count"}
# The parts of a count request the loopback count covers, as the Messages API names them.
_COUNTED_FIELDS = ("system", "messages", "tools")
LOOPBACK_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Reply:
    """One scripted answer, rendered in the wire format of the endpoint that receives the request.

    `status` 200: `text` and `tool_calls` ((name, arguments) or (id, name, arguments)) with usage;
    otherwise an error body carrying `message`. `headers` are added (e.g. retry-after); `delay`
    seconds pass before answering (timeouts); `stop` overrides the stop/finish reason;
    `raw_body` replaces the rendered body entirely (malformed responses).
    """

    status: int = 200
    text: str = ""
    tool_calls: tuple[tuple[Any, ...], ...] = ()
    tokens_in: int = 11
    tokens_out: int = 7
    stop: str | None = None
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None
    extra_blocks: tuple[dict[str, Any], ...] = ()  # Anthropic content blocks put first (e.g. thinking)
    # Prompt-cache usage to report: Anthropic's cache_read/cache_creation_input_tokens (on top of
    # tokens_in, as Anthropic counts), OpenAI's prompt_tokens_details.cached_tokens (within tokens_in).
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def text_reply(text: str, *, tokens_in: int = 11, tokens_out: int = 7, **kw: Any) -> Reply:
    return Reply(text=text, tokens_in=tokens_in, tokens_out=tokens_out, **kw)


def tool_reply(*calls: tuple[Any, ...], text: str = "", **kw: Any) -> Reply:
    """A reply asking for tool calls: each call is (name, arguments) or (id, name, arguments)."""
    return Reply(text=text, tool_calls=tuple(calls), **kw)


def error_reply(status: int, message: str | None = None, *, retry_after: str | None = None, **kw: Any) -> Reply:
    headers = dict(kw.pop("headers", {}))
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return Reply(status=status, message=message or HTTPStatus(status).phrase, headers=headers, **kw)


ReplySource = Reply | Callable[["RecordedRequest"], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received: the API it was for, path, headers (lower-case names), JSON body."""

    api: Api | None
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float

    @property
    def api_key(self) -> str | None:
        """The key as sent: `x-api-key` (Anthropic) or the bearer token (OpenAI)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


class ProviderServer:
    """The loopback provider. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, *, api_key: str | None = None, fallback: ReplySource | None = None) -> None:
        self.api_key = api_key
        self.fallback: ReplySource = fallback or error_reply(
            400, "provider_server: no scripted reply left for this request"
        )
        self._lock = threading.Lock()
        self._queues: dict[Api, deque[ReplySource]] = {"anthropic": deque(), "openai": deque(),
                                                        "anthropic_count": deque()}
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ProviderServer:
        server = self

        class Handler(_Handler):
            provider_server = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="provider-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        """For ANTHROPIC_BASE_URL: the SDK appends /v1/messages."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """For OPENAI_BASE_URL: the SDK appends /chat/completions to a base that ends in /v1."""
        return f"{self.url}/v1"

    def env(self, *, key: str | None = None) -> dict[str, str]:
        """The SDK variables pointing both providers here (with `key`, or the server's own key)."""
        key = key or self.api_key or "test-key"
        return {
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "ANTHROPIC_API_KEY": key,
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": key,
        }

    # -- scripting and recording --------------------------------------------------------------

    def script_anthropic(self, *replies: ReplySource) -> None:
        self._script("anthropic", replies)

    def script_openai(self, *replies: ReplySource) -> None:
        self._script("openai", replies)

    def script_anthropic_count(self, *replies: ReplySource) -> None:
        """Replies for POST /v1/messages/count_tokens; unscripted it answers `loopback_token_count`."""
        self._script("anthropic_count", replies)

    def _script(self, api: Api, replies: tuple[ReplySource, ...]) -> None:
        with self._lock:
            self._queues[api].extend(replies)

    def pending(self, api: Api) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._queues[api])

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, api: Api) -> list[RecordedRequest]:
        return [r for r in self.requests if r.api == api]

    def reset(self) -> None:
        """Forget the scripts and the recorded requests."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._requests.clear()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            if request.api is None:
                return error_reply(404, f"provider_server: no endpoint {request.method} {request.path}")
            if self.api_key is not None and request.api_key != self.api_key:
                return error_reply(401, f"Incorrect API key provided: {request.api_key}.")
            queue = self._queues[request.api]
            if queue:
                source = queue.popleft()
            elif request.api == "anthropic_count":
                source = Reply(tokens_in=loopback_token_count(request.body))
            else:
                source = self.fallback
        return source(request) if callable(source) else source

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids):06d}"


# -- wire formats ---------------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {401: "invalid_request_error", 429: "requests", 500: "server_error"}


def _calls(reply: Reply, server: ProviderServer, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for call in reply.tool_calls:
        if len(call) == 3:
            out.append((call[0], call[1], call[2]))
        else:
            out.append((server.next_id(prefix), call[0], call[1]))
    return out


def render_anthropic(reply: Reply, request: RecordedRequest, server: ProviderServer) -> dict[str, Any]:
    if reply.status != 200:
        kind = _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error" if reply.status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": reply.message}}
    content: list[dict[str, Any]] = list(reply.extra_blocks)
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    calls = _calls(reply, server, "toolu_")
    content.extend({"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls)
    return {
        "id": server.next_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": (request.body or {}).get("model", "unknown"),
        "content": content,
        "stop_reason": reply.stop or ("tool_use" if calls else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out,
                  "cache_read_input_tokens": reply.cache_read_tokens,
                  "cache_creation_input_tokens": reply.cache_write_tokens},
    }


def loopback_token_count(body: Any) -> int:
    """The count the loopback's count endpoint answers: ceil(characters / 4) over the compact JSON of
    the body's system, messages and tools (what the Messages API counts). Deterministic, not a tokenizer."""
    fields = body if isinstance(body, dict) else {}
    chars = sum(
        len(json.dumps(fields[name], separators=(",", ":"), ensure_ascii=False))
        for name in _COUNTED_FIELDS
        if name in fields
    )
    return math.ceil(chars / LOOPBACK_CHARS_PER_TOKEN)


def render_anthropic_count(reply: Reply, request: RecordedRequest, server: ProviderServer) -> dict[str, Any]:
    if reply.status != 200:
        return render_anthropic(reply, request, server)  # the same error body as the Messages API
    return {"input_tokens": reply.tokens_in}


def render_openai(reply: Reply, request: RecordedRequest, server: ProviderServer) -> dict[str, Any]:
    if reply.status != 200:
        kind = _OPENAI_ERROR_TYPES.get(reply.status, "server_error" if reply.status >= 500 else "invalid_request_error")
        code = "invalid_api_key" if reply.status == 401 else None
        return {"error": {"message": reply.message, "type": kind, "param": None, "code": code}}
    calls = _calls(reply, server, "call_")
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}} for i, n, a in calls
        ]
    return {
        "id": server.next_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": (request.body or {}).get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.stop or ("tool_calls" if calls else "stop"),
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": reply.tokens_in,
            "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_in + reply.tokens_out,
            "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens},
        },
    }


_RENDERERS: dict[Api | None, Callable[[Reply, RecordedRequest, ProviderServer], dict[str, Any]]] = {
    "anthropic": render_anthropic,
    "openai": render_openai,
    "anthropic_count": render_anthropic_count,
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    provider_server: ProviderServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        path = self.path.split("?", 1)[0]
        api = _PATHS.get(path) if self.command == "POST" else None
        request = RecordedRequest(
            api=api,
            method=self.command,
            path=path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at=time.time(),
        )
        server = self.provider_server
        reply = server._next_reply(request)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw_body is not None:
            payload = reply.raw_body
        else:
            render = _RENDERERS.get(api, render_openai)  # no endpoint (404): OpenAI's error shape, as before
            payload = json.dumps(render(reply, request, server)).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("request-id", server.next_id("req_"))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read .requests
        pass


class PromptCache:
    """Anthropic's prompt caching, as the loopback reports it. A request is read as its blocks in the
    order Anthropic caches them (tools, system, then each message's content blocks); each block marked
    `cache_control` writes the prefix ending there, and a request reads the longest prefix written
    before that ends at a block boundary up to 20 blocks before one of its own breakpoints (Anthropic's
    lookback). What is neither read nor written is plain input. The real cache also expires after 5
    minutes idle; this one does not. Counts use `loopback_token_count`'s characters/4 rule.

        cache = PromptCache()
        server.fallback = lambda request: cache.reply(request, text="HEARTBEAT_OK")
    """

    LOOKBACK_BLOCKS = 20

    def __init__(self) -> None:
        self._written: set[str] = set()
        self._lock = threading.Lock()

    def reply(self, request: RecordedRequest, *, text: str, tokens_out: int = 20) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        marked = _cache_blocks(body)
        marks = [i for i, block in enumerate(marked) if block.pop("_mark", False)]
        blocks = marked
        sizes = [math.ceil(len(json.dumps(b, separators=(",", ":"), ensure_ascii=False)) / LOOPBACK_CHARS_PER_TOKEN)
                 for b in blocks]
        keys = [json.dumps(blocks[: i + 1], sort_keys=True) for i in range(len(blocks))]
        total = loopback_token_count(body)
        with self._lock:
            hit = max((j for i in marks for j in range(max(0, i - self.LOOKBACK_BLOCKS), i + 1)
                       if keys[j] in self._written), default=-1)
            self._written.update(keys[i] for i in marks)
        read = sum(sizes[: hit + 1])
        written = max(0, sum(sizes[: marks[-1] + 1]) - read) if marks else 0
        return Reply(text=text, tokens_in=max(0, total - read - written), tokens_out=tokens_out,
                     cache_read_tokens=read, cache_write_tokens=written)


def _cache_blocks(body: dict[str, Any]) -> list[Any]:
    """The request's blocks in cache order, each with its role; `cache_control` is kept as a mark
    (`_mark`) but is not part of what is cached (the same text with or without it is the same prefix)."""
    def block(raw: Any, role: str) -> dict[str, Any]:
        item = {"type": "text", "text": raw} if isinstance(raw, str) else dict(raw)
        marked = "cache_control" in item
        item.pop("cache_control", None)
        return {"role": role, **item, **({"_mark": True} if marked else {})}

    blocks = [block(tool, "tools") for tool in body.get("tools") or []]
    system = body.get("system")
    blocks.extend(block(b, "system") for b in (system if isinstance(system, list) else [system] if system else []))
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [content]
        blocks.extend(block(part, message.get("role", "")) for part in parts if part is not None)
    return blocks

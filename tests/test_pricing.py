"""providers.pricing: hand-computed costs over the bundled genai-prices table, tenant prices, fail-closed.

The expected values are worked out by hand from the providers' published prices (USD per million
tokens), which the installed genai-prices table carries:

- gpt-4o-mini: input 0.15, cached input 0.075, output 0.60 (no cache-write price: writes cost input);
- claude-sonnet-4-5: input 3, cache read 0.30, cache write (5 min) 3.75, output 15; above 200k input
  tokens per request, 6 and 22.50.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from contract.errors import InvalidInput
from providers.pricing import TenantPrice, cost_usd, has_price, parse_price_option

LOCAL = {"my-local-llm": TenantPrice(input_usd_per_mtok=Decimal("0.5"), output_usd_per_mtok=Decimal("1.5"))}
CHEAP_MINI = {"gpt-4o-mini": TenantPrice(input_usd_per_mtok=Decimal(1), output_usd_per_mtok=Decimal(2))}

# (provider, model, tokens_in, tokens_out, cache_read, cache_write, tenant prices, expected USD, how)
TABLE = [
    ("openai", "gpt-4o-mini", 1_000_000, 1_000_000, 0, 0, None, "0.75", "0.15 + 0.60"),
    ("openai", "gpt-4o-mini", 1_000, 500, 400, 0, None, "0.00042", "(600*0.15 + 400*0.075 + 500*0.60) / 1e6"),
    ("openai", "gpt-4o-mini", 1_000, 500, 400, 100, None, "0.00042", "a cache write without its own price is input"),
    ("anthropic", "claude-sonnet-4-5", 10_000, 2_000, 6_000, 1_000, None, "0.04455",
     "(3000*3 + 6000*0.30 + 1000*3.75 + 2000*15) / 1e6"),
    ("anthropic", "claude-sonnet-4-5-20250929", 10_000, 2_000, 0, 0, None, "0.06", "(10000*3 + 2000*15) / 1e6"),
    ("anthropic", "claude-sonnet-4-5", 300_000, 0, 0, 0, None, "1.8", "over 200k input: 300000*6 / 1e6"),
    ("openai", "gpt-4o-mini", 1_000, 500, 0, 0, CHEAP_MINI, "0.002", "tenant beats library: (1000*1 + 500*2) / 1e6"),
    ("openai", "gpt-4o-mini", 1_000, 500, 600, 0, CHEAP_MINI, "0.002", "tenant: cache reads cost input"),
    ("openai", "my-local-llm", 2_000, 1_000, 0, 0, LOCAL, "0.0025", "(2000*0.5 + 1000*1.5) / 1e6"),
    ("offline", "offline-cheap", 123_456, 7_890, 0, 0, None, "0", "the offline provider runs no model"),
]


@pytest.mark.parametrize(("provider", "model", "tokens_in", "tokens_out", "cache_read", "cache_write", "tenant",
                          "expected", "how"), TABLE, ids=[row[-1] for row in TABLE])
def test_cost_table(provider: str, model: str, tokens_in: int, tokens_out: int, cache_read: int, cache_write: int,
                    tenant: dict[str, TenantPrice] | None, expected: str, how: str) -> None:
    cost = cost_usd(provider, model, tokens_in=tokens_in, tokens_out=tokens_out, cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write, tenant_prices=tenant)
    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected), how


def test_cached_input_is_not_counted_twice() -> None:
    """tokens_in includes the cache reads: a call served wholly from cache costs cache price only."""
    all_cached = cost_usd("anthropic", "claude-sonnet-4-5", tokens_in=100_000, tokens_out=0,
                          cache_read_tokens=100_000)
    assert all_cached == Decimal("0.03")  # 100000*0.30 / 1e6, not 100000*(3 + 0.30) / 1e6


@pytest.mark.parametrize(("provider", "model"), [
    ("openai", "llama3.2"),                 # a self-hosted model behind OPENAI_BASE_URL
    ("anthropic", "my-local-llm"),          # known only by a tenant price, not given here
    ("openai", "claude-sonnet-4-5"),        # a real model, under the wrong provider
    ("mystery-provider", "gpt-4o-mini"),    # a provider the library does not know
])  # fmt: skip
def test_unknown_model_has_no_price(provider: str, model: str) -> None:
    assert cost_usd(provider, model, tokens_in=1_000, tokens_out=100) is None
    assert not has_price(provider, model, {"some-other-model": LOCAL["my-local-llm"]})


def test_has_price() -> None:
    assert has_price("openai", "gpt-4o-mini", None)
    assert has_price("anthropic", "claude-sonnet-4-5", None)
    assert has_price("openai", "my-local-llm", LOCAL)
    assert not has_price("openai", "my-local-llm", None)
    assert has_price("offline", "offline-premium", None)


def test_a_free_tenant_price_is_zero_not_unknown() -> None:
    _, free = parse_price_option("llama3.2=0,0")
    assert cost_usd("openai", "llama3.2", tokens_in=5_000, tokens_out=5_000, tenant_prices={"llama3.2": free}) == 0


@pytest.mark.parametrize(("counts", "fragment"), [
    ({"tokens_in": -1, "tokens_out": 0}, "tokens_in must be a non-negative integer"),
    ({"tokens_in": 10, "tokens_out": 1.5}, "tokens_out must be a non-negative integer"),
    ({"tokens_in": 10, "tokens_out": 0, "cache_read_tokens": 8, "cache_write_tokens": 3}, "exceed tokens_in (10)"),
])  # fmt: skip
def test_impossible_counts_are_refused(counts: dict[str, int], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        cost_usd("openai", "gpt-4o-mini", **counts)


# ------------------------------------------------------------------------------ the price option


def test_parse_price_option() -> None:
    assert parse_price_option("my-local-llm=0.5,1.5") == (
        "my-local-llm", TenantPrice(input_usd_per_mtok=Decimal("0.5"), output_usd_per_mtok=Decimal("1.5")))
    model, price = parse_price_option(" qwen3:14b = 0 , 2.25 ")
    assert (model, price.input_usd_per_mtok, price.output_usd_per_mtok) == ("qwen3:14b", 0, Decimal("2.25"))


@pytest.mark.parametrize(("text", "fragment"), [
    ("my-local-llm", "expected MODEL=IN,OUT"),
    ("my-local-llm 0.5,1.5", "expected MODEL=IN,OUT"),
    ("=0.5,1.5", "model name before '=' is empty"),
    ("  =0.5,1.5", "model name before '=' is empty"),
    ("m=0.5", "expected two numbers after '='"),
    ("m=0.5,1.5,2", "got 3"),
    ("m=abc,1.5", "input price 'abc' is not a number"),
    ("m=0.5,", "output price '' is not a number"),
    ("m=0.5,$2", "output price '$2' is not a number"),
    ("m=-0.5,1.5", "input price -0.5 is negative"),
    ("m=0.5,-1", "output price -1 is negative"),
    ("m=NaN,1", "input price 'NaN' is not a finite number"),
    ("m=0.5,inf", "output price 'inf' is not a finite number"),
    ("m=sNaN,1", "not a finite number"),
])  # fmt: skip
def test_parse_price_option_refusals(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_price_option(text)
    assert fragment in str(caught.value)

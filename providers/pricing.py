"""What an LLM call costs, in USD: a tenant's own price, else the `genai-prices` library, else unknown.

    cost_usd("anthropic", "claude-sonnet-4-5", tokens_in=10_000, tokens_out=2_000, cache_read_tokens=6_000)
    cost_usd("openai", "my-local-llm", tokens_in=..., tokens_out=..., tenant_prices={"my-local-llm": price})

Where a price comes from, first match wins:

1. the tenant's price for the model (`parse_price_option("MODEL=IN,OUT")`, USD per million tokens):
   for a self-hosted model, a negotiated rate, or a model newer than the installed library. Cache
   reads and writes are priced as input tokens (a tenant states two numbers, not four);
2. the `offline` provider: always Decimal(0), it runs no model;
3. `genai_prices.calc_price` for (provider, model): the maintained price table bundled with the
   installed package, cache reads and writes at the model's cache prices, tiered prices (long
   contexts) applied;
4. otherwise None: the model has no known price. Callers fail closed (refuse or hold the call),
   never treat an unknown price as $0.

Token counts follow `LlmResponse.tokens_in`: `tokens_in` is ALL input tokens, cache reads and
writes included (Anthropic's usage is summed that way by providers.anthropic_provider; OpenAI's
`prompt_tokens` already includes cached tokens). genai-prices reads its `input_tokens` the same way
(its cache units are sub-units of input; it prices `input - cache_read - cache_write` at the input
rate and each cache part at its own rate), so `tokens_in` goes to it unchanged and nothing is
counted twice. Cache counts larger than `tokens_in` are refused (InvalidInput).

No network, ever: genai-prices fetches newer prices only when an `UpdatePrices` updater is started
(a background thread that downloads its JSON from GitHub), and this module never starts one; the
bundled table is what a release of the package pins. To take newer prices, upgrade the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from contract.errors import InvalidInput

OFFLINE_PROVIDER = "offline"
TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)  # prices are USD per million tokens (MTok)


@dataclass(frozen=True)
class TenantPrice:
    """A tenant's own price for one model, in USD per million tokens."""

    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal


def parse_price_option(text: str) -> tuple[str, TenantPrice]:
    """`MODEL=IN,OUT` (USD per million input and output tokens) as (model, TenantPrice).

    `my-local-llm=0.5,1.5`; `ollama-model=0,0` states a free model (unlike an unpriced one). The
    model is everything before the last `=`. Raises InvalidInput naming what is wrong.
    """
    model, sep, prices = text.rpartition("=")
    if not sep:
        raise InvalidInput(f"price {text!r}: expected MODEL=IN,OUT (USD per million tokens), e.g. my-local-llm=0.5,1.5")
    model = model.strip()
    if not model:
        raise InvalidInput(f"price {text!r}: the model name before '=' is empty")
    parts = prices.split(",")
    if len(parts) != 2:
        raise InvalidInput(
            f"price {text!r}: expected two numbers after '=', input and output USD per million tokens "
            f"(e.g. {model}=0.5,1.5), got {len(parts)}"
        )
    price_in = _price_number(text, "input", parts[0])
    price_out = _price_number(text, "output", parts[1])
    return model, TenantPrice(input_usd_per_mtok=price_in, output_usd_per_mtok=price_out)


def _price_number(text: str, which: str, raw: str) -> Decimal:
    raw = raw.strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(f"price {text!r}: the {which} price {raw!r} is not a number") from None
    if not value.is_finite():
        raise InvalidInput(f"price {text!r}: the {which} price {raw!r} is not a finite number")
    if value < 0:
        raise InvalidInput(f"price {text!r}: the {which} price {raw} is negative")
    return value


def cost_usd(
    provider: str,
    model: str,
    *,
    tokens_in: int,
    tokens_out: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    tenant_prices: Mapping[str, TenantPrice] | None = None,
) -> Decimal | None:
    """The USD cost of one call, or None when the model has no known price (fail closed).

    `tokens_in` counts every input token, cache reads and writes included (see the module docstring).
    Raises InvalidInput for negative counts or cache counts above `tokens_in`.
    """
    _check_counts(tokens_in=tokens_in, tokens_out=tokens_out, cache_read_tokens=cache_read_tokens,
                  cache_write_tokens=cache_write_tokens)
    tenant = (tenant_prices or {}).get(model)
    if tenant is not None:
        return (tokens_in * tenant.input_usd_per_mtok + tokens_out * tenant.output_usd_per_mtok) / TOKENS_PER_PRICE_UNIT
    if provider == OFFLINE_PROVIDER:
        return Decimal(0)
    from genai_prices import Usage

    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=cache_read_tokens,
                  cache_write_tokens=cache_write_tokens)
    calculation = _library_calculation(provider, model, usage)
    return None if calculation is None else calculation.total_price


def has_price(provider: str, model: str, tenant_prices: Mapping[str, TenantPrice] | None = None) -> bool:
    """True when `cost_usd` would price `model`: a tenant price, the offline provider, or the library."""
    if model in (tenant_prices or {}) or provider == OFFLINE_PROVIDER:
        return True
    from genai_prices import Usage

    return _library_calculation(provider, model, Usage(input_tokens=0, output_tokens=0)) is not None


def _library_calculation(provider: str, model: str, usage: Any) -> Any | None:
    """genai-prices' PriceCalculation, or None for an unknown provider or model, or one without token prices."""
    from genai_prices import calc_price

    try:
        calculation = calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:  # the library's "unknown provider" and "unknown model"
        return None
    prices = calculation.model_price
    # A model found but priced per image, per second or per request only would cost "$0" in tokens:
    # not a price for budgets.
    if prices.input_mtok is None or prices.output_mtok is None:
        return None
    return calculation


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
    cached = counts["cache_read_tokens"] + counts["cache_write_tokens"]
    if cached > counts["tokens_in"]:
        raise InvalidInput(
            f"cache_read_tokens + cache_write_tokens ({cached}) exceed tokens_in ({counts['tokens_in']}): "
            f"tokens_in counts every input token, cached ones included"
        )

"""A tenant's spend against its budgets: per day (the last DAYS tenant-local days) and per agent this
tenant-local month against its monthly ceiling (as the manifest sets it and an operator raised or
waived it). Charts, and the same numbers in tables.

    GET /tenants/{t}/spend
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response

from api.context import Context
from api.dashboard.charts import Bar, columns, horizontal_bars
from api.dashboard.layout import Session, cells, esc, page, refused_page, table, tenant_zone
from client.budgets import agent_months, spend
from contract.budget import usd
from contract.errors import HeartbeatsError

router = APIRouter(include_in_schema=False)

DAYS = 30


def money(amount: Decimal | None) -> str:
    """USD as people read it: cents from one dollar up, up to six significant digits below."""
    if amount is None:
        return "—"
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.6g}" if amount else "0"


@router.get("/tenants/{tenant}/spend")
async def spend_page(tenant: str, context: Context, session: Session) -> Response:
    store = context.backends.store
    try:
        months = await agent_months(store, tenant=tenant)
        zone = ZoneInfo(await tenant_zone(context, tenant))
        today = datetime.now(UTC).astimezone(zone).date()
        first = today - timedelta(days=DAYS - 1)
        by_day = {line.key: line for line in await spend(store, tenant=tenant, by="day", since=first)}
    except HeartbeatsError as exc:
        return refused_page("Spend", exc, session=session)

    days = [first + timedelta(days=offset) for offset in range(DAYS)]
    day_bars = []
    for day in days:
        line = by_day.get(day.isoformat())
        amount = usd(line.nano_usd) if line else None
        day_bars.append(Bar(day.isoformat()[5:], float(amount or 0), text=f"{amount:.4f} USD" if line else "0 USD"))
    day_rows = [cells(esc(key), str(line.calls), f"{line.tokens_in:,}", f"{line.tokens_out:,}",
                      f"{usd(line.nano_usd):.6f}", str(line.unpriced_calls) if line.unpriced_calls else "")
                for key, line in sorted(by_day.items(), reverse=True)]

    agent_bars, agent_rows = [], []
    for month in months:
        spent = usd(month.spent_nano)
        ceiling = usd(month.ceiling_nano) if month.ceiling_nano is not None else None
        waived = ceiling is None and month.declared_nano is not None
        state = ("held: its calls are refused until someone decides" if month.held
                 else "waived for this month" if waived else "no ceiling" if ceiling is None
                 else "near the ceiling" if (month.share or 0) >= 0.8 else "within")
        if month.share is not None:
            agent_bars.append(Bar(f"{month.app}/{month.agent}", 100 * month.share, 100.0,
                                  f"{money(spent)} of {money(ceiling)} USD" + (" · held" if month.held else "")))
        agent_rows.append(cells(esc(f"{month.app}/{month.agent}"), f"{spent:.6f}",
                                money(ceiling) if ceiling is not None else "—",
                                f"{month.share:.0%}" if month.share is not None else "—", esc(state)))
    month_name = months[0].month if months else today.strftime("%Y-%m")
    body = f"""<h1>Spend of {esc(tenant)}</h1>
<p class="muted">Settled LLM spend, by the tenant's calendar ({esc(str(zone))}). <a href="/tenants/{quote(tenant)}">Back to the tenant</a></p>
<h2>Per agent, {esc(month_name)}, against the monthly ceiling</h2>
<p class="muted">Each bar is the share of the agent's own ceiling spent (the dashed mark is 100%). An agent is
held when its next call could pass the ceiling (a call reserves its largest possible cost first), so it
may be held below 100%; it then waits on the needs-attention page for a decision.</p>
{horizontal_bars(f"share of the monthly ceiling spent per agent in {month_name}", agent_bars) if agent_bars else ""}
{table(["agent", "spent (USD)", "ceiling (USD)", "share", "state"], agent_rows, empty="No agents.",
       caption="spend per agent this month")}
<h2>Per day, the last {DAYS} days</h2>
{columns(f"spend per day over the last {DAYS} days", day_bars, unit="USD")}
{table(["day", "calls", "tokens in", "tokens out", "USD", "unpriced calls"], day_rows, empty="Nothing spent in these days.",
       caption="spend per day")}"""
    return page(f"{tenant} spend", body, session=session)

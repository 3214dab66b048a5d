"""Metrics and threshold triggers: each metric's last value, and whether each threshold is armed.

A threshold trigger fires once when a value crosses into its condition, and not again until a
value on the other side has re-armed it. The check and the disarming are one conditional update,
so two values posted at once cannot both fire it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, select, update

from store.checks import check_aware, check_id, check_ids, check_text
from store.db import Area
from store.errors import StoreError
from store.tables import MetricRow, ThresholdStateRow

metrics: Table = MetricRow.__table__  # type: ignore[assignment]
thresholds: Table = ThresholdStateRow.__table__  # type: ignore[assignment]


class Metrics(Area):
    async def put(self, *, tenant: str, app: str, metric: str, value: float, at: datetime) -> None:
        """Keep `value` as the metric's last value."""
        check_ids(tenant=tenant, app=app)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
                float("inf"), float("-inf")):
            raise StoreError(f"a metric's value must be a finite number (got {value!r})")
        insert = self.insert(metrics).values(tenant_id=tenant, app_id=app,
                                             metric=check_text(metric, "metric", max_length=128),
                                             value=float(value), updated_at=check_aware(at, "at"))
        async with self._db.write() as conn:
            await conn.execute(insert.on_conflict_do_update(
                index_elements=[metrics.c.tenant_id, metrics.c.app_id, metrics.c.metric],
                set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at}))

    async def last(self, *, tenant: str, app: str, metric: str) -> float | None:
        check_ids(tenant=tenant, app=app)
        query = select(metrics.c.value).where(metrics.c.tenant_id == tenant, metrics.c.app_id == app,
                                              metrics.c.metric == metric)
        async with self._db.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def cross(self, *, tenant: str, task_id: str, trigger: int, in_condition: bool, at: datetime) -> bool:
        """Apply one value to a task's threshold trigger: True when it fires (armed, and the value is
        inside the condition: it disarms); a value outside the condition re-arms it."""
        check_id(tenant, "tenant id")
        task_id = check_text(task_id, "task id", max_length=300)
        mine = (thresholds.c.task_id == task_id, thresholds.c.trigger == trigger)
        async with self._db.write() as conn:
            await conn.execute(self.insert(thresholds).values(
                task_id=task_id, trigger=trigger, tenant_id=tenant, armed=True, crossed_at=None,
            ).on_conflict_do_nothing(index_elements=[thresholds.c.task_id, thresholds.c.trigger]))
            if not in_condition:
                await conn.execute(update(thresholds).where(*mine).values(armed=True))
                return False
            fired = await conn.execute(update(thresholds).where(*mine, thresholds.c.armed.is_(True)).values(
                armed=False, crossed_at=check_aware(at, "at")))
            return fired.rowcount == 1

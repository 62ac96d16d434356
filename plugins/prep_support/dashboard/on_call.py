"""On call on the dashboard: each team's last shift handover, and how many how-to requests answered
themselves (the requester resolved them after our suggestions) over the last 7 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from prep_support.schema import HowToRequestRow, ShiftHandoverRow

handovers = ShiftHandoverRow.__table__
requests = HowToRequestRow.__table__
DEFLECTION_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class LastHandover:
    team: str
    shift_start: datetime
    shift_end: datetime
    items: int
    page_url: str | None


@dataclass(frozen=True)
class OnCall:
    handovers: list[LastHandover]
    suggested: int  # how-to requests answered with suggestions in the window
    deflected: int  # ... of which the requester then resolved

    @property
    def deflection_pct(self) -> float | None:
        return 100.0 * self.deflected / self.suggested if self.suggested else None


def on_call(connection: Connection, now: datetime) -> OnCall:
    latest = (select(handovers.c.team, func.max(handovers.c.shift_start).label("shift_start"))
              .group_by(handovers.c.team).subquery())
    rows = connection.execute(
        select(handovers).join(latest, (handovers.c.team == latest.c.team)
                               & (handovers.c.shift_start == latest.c.shift_start))
        .order_by(handovers.c.team)).all()
    suggested, deflected = connection.execute(
        select(func.count(), func.coalesce(func.sum(requests.c.deflected.cast(requests.c.id.type)), 0))
        .where(requests.c.status == "suggested", requests.c.answered_at >= now - DEFLECTION_WINDOW)).one()
    return OnCall([LastHandover(r.team, r.shift_start, r.shift_end, r.items, r.page_url) for r in rows],
                  int(suggested), int(deflected))

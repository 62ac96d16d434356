"""The dashboard's On call section: each team's last shift handover, and the how-to deflection rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import create_engine, insert

from prep_support.dashboard.app import create_app
from prep_support.migrate import upgrade
from prep_support.schema import HowToRequestRow, ShiftHandoverRow

NOW = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)


def overview(engine) -> str:
    """The overview page, requested in-process through httpx's ASGI transport."""
    async def call() -> str:
        transport = httpx.ASGITransport(app=create_app(lambda: engine, clock=lambda: NOW))
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as client:
            return (await client.get("/")).text

    return asyncio.run(call())


def test_the_overview_shows_the_last_handover_per_team_and_the_deflection_rate(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    empty = overview(engine)
    assert "No shift handover yet." in empty and "none suggested" in empty

    def handover(team: str, start: datetime, items: int, url: str | None) -> dict:
        return {"team": team, "shift_start": start, "shift_end": start + timedelta(hours=12), "since": start,
                "items": items, "summary": {}, "page_url": url, "created_at": start}

    def request(key: str, status: str, deflected: bool, days_ago: float) -> dict:
        return {"system": "jira", "request_key": key, "url": "u", "question": "q", "status": status,
                "best_coverage": 0.7, "suggestions": [], "answered_at": NOW - timedelta(days=days_ago),
                "deflected": deflected, "run_id": "r"}

    with engine.begin() as connection:
        connection.execute(insert(ShiftHandoverRow.__table__), [
            handover("ops@example.com", datetime(2026, 12, 3, 19, tzinfo=UTC), 4, "https://wiki.example/old"),
            handover("ops@example.com", datetime(2026, 12, 4, 7, tzinfo=UTC), 6, "https://wiki.example/today"),
            handover("web@example.com", datetime(2026, 12, 4, 7, tzinfo=UTC), 0, "javascript:alert(1)"),
        ])
        connection.execute(insert(HowToRequestRow.__table__), [
            request("OPS-1", "suggested", True, 1), request("OPS-2", "suggested", False, 2),
            request("OPS-3", "suggested", False, 3), request("OPS-4", "no_match", False, 1),
            request("OPS-5", "suggested", True, 9),  # older than the 7 days shown
        ])
    page = overview(engine)
    section = page.split('id="on-call"', 1)[1].split('id="quality"', 1)[0]
    assert "<td>ops@example.com</td><td>2026-12-04 07:00 &ndash; 19:00 UTC</td><td>6</td>" in section
    assert "2026-12-03 19:00" not in section and section.count("<tr><td>") == 2
    assert 'href="https://wiki.example/today"' in section and "javascript:" not in section
    assert "1 of 3 resolved by the requester (33% deflected)" in section
    engine.dispose()

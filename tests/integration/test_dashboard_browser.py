"""The support dashboard in a real browser: Debian's Chromium driven by Playwright (no browser download).

The app serves the seeded estate of ``tests/plugins/test_dashboard.py`` with uvicorn on a free loopback
port, under the same ``/support-dashboard`` prefix as inside Airflow. The screenshots go to ``docs/``;
on failure the page is saved to ``test-artifacts/``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine

from prep_support.dashboard.app import create_app
from prep_support.migrate import upgrade
from prep_support.results import upsert
from prep_support.schema import QualityResultRow
from tests.browser import DOCS, chromium_page, save_small_png
from tests.plugins.test_dashboard import EVIL_NAME, NOW, _dq, seed_support_db

pytestmark = pytest.mark.integration

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dashboard_engine(tmp_path) -> Iterator:
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    seed_support_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def dashboard_url(dashboard_engine) -> Iterator[str]:
    import uvicorn
    from fastapi import FastAPI

    engine = dashboard_engine
    api = FastAPI()
    api.mount("/support-dashboard", create_app(lambda: engine, clock=lambda: NOW))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="dashboard-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/support-dashboard/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_dashboard_in_chromium(dashboard_url, request) -> None:
    from playwright.sync_api import expect

    with chromium_page(request) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(dashboard_url)
        expect(page.get_by_role("heading", name="Open incidents")).to_be_visible()
        ticket = page.get_by_role("cell", name="ORD-1", exact=True).get_by_role("link")
        expect(ticket).to_be_visible()
        expect(ticket).to_have_attribute("href", "https://jira.example.com/browse/ORD-1")
        expect(page.locator("#services ~ table").get_by_text("Orders API", exact=True)).to_be_visible()
        # Hostile names from config and trackers show as text; none of it runs.
        expect(page.get_by_text(EVIL_NAME).first).to_be_visible()
        expect(page.locator("a[href^='javascript:']")).to_have_count(0)
        save_small_png(page, DOCS / "dashboard.png")

        page.locator("#services ~ table").get_by_role("link", name="Orders API").click()
        expect(page).to_have_url(dashboard_url + "services/orders-api")
        expect(page.locator("figure.chart")).to_have_count(4)
        expect(page.get_by_text("Latency, last 7 days")).to_be_visible()
        expect(page.locator("figure.chart polyline").first).to_be_visible()
        expect(page.get_by_role("cell", name="ORD-1", exact=True)).to_be_visible()
        save_small_png(page, DOCS / "dashboard-service.png")
        assert dialogs == []


FIRST_DAY = datetime(2026, 11, 4, 2, tzinfo=UTC)
FAILING = {2, 6, 7}  # 2026-11-06, -10 and -11: days 3, 7 and 8 of a 14-night catch-up


def seed_quality(engine) -> None:
    """Two suites over 14 nights; orders' customer_id check failed on three of them (with a sample)."""
    rows = []
    for n in range(14):
        day = FIRST_DAY + timedelta(days=n)
        rows.append(_dq("customers", "unique.email", day, True))
        failing = n in FAILING
        rows.append(_dq("orders", "not_null.customer_id", day, not failing,
                        sample={"columns": ["id", "customer_id"], "rows": [[n * 10, None], [n * 10 + 1, None]]}
                        if failing else None))
    upsert(engine, QualityResultRow.__table__, rows, ["suite_id", "check_id", "interval_start"], newer="evaluated_at")


def test_failing_days_in_chromium_link_to_their_results_and_turn_green_when_rechecked(
    dashboard_engine, dashboard_url, request
) -> None:
    from playwright.sync_api import expect

    seed_quality(dashboard_engine)
    with chromium_page(request) as page:
        page.goto(dashboard_url + "#quality")
        strip = page.locator("#quality-orders")
        expect(strip.locator("a.day-fail")).to_have_count(3)
        expect(page.locator("#quality-customers a.day-fail")).to_have_count(0)
        expect(page.locator("#quality-customers .day-pass")).to_have_count(14)
        page.locator("#quality").scroll_into_view_if_needed()
        save_small_png(page, DOCS / "dashboard-quality.png")

        strip.locator("a.day-fail").first.click()
        expect(page).to_have_url(dashboard_url + "quality/orders/2026-11-06")
        expect(page.get_by_role("heading", name="Data quality: orders on 2026-11-06")).to_be_visible()
        expect(page.get_by_text("3 of 40 (7.50%)")).to_be_visible()
        expect(page.get_by_role("cell", name="NULL").first).to_be_visible()

        # The 10th is fixed and re-checked (a later evaluation that passes): its cell turns green.
        fixed = _dq("orders", "not_null.customer_id", FIRST_DAY + timedelta(days=6), True)
        fixed["evaluated_at"] += timedelta(days=9)
        upsert(dashboard_engine, QualityResultRow.__table__, [fixed], ["suite_id", "check_id", "interval_start"],
               newer="evaluated_at")
        page.goto(dashboard_url + "#quality")
        expect(strip.locator("a.day-fail")).to_have_count(2)
        expect(strip.locator('[data-day="2026-11-10"]')).to_have_class("day day-pass")

"""Maintenance windows: keyed, validated, and active exactly in their span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select

from prep_support.maintenance import MaintenanceError, add_window, main, services_in_maintenance
from prep_support.migrate import upgrade
from prep_support.schema import MaintenanceWindowRow

T0 = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    return engine


def test_window_covers_its_services_only_in_its_span(engine) -> None:
    add_window(engine, key="chg-1", service_ids=["orders-api", "reporting"], starts_at=T0,
               ends_at=T0 + timedelta(hours=3))
    assert services_in_maintenance(engine, T0 - timedelta(seconds=1)) == set()
    assert services_in_maintenance(engine, T0) == {"orders-api", "reporting"}
    assert services_in_maintenance(engine, T0 + timedelta(hours=3)) == set()


def test_same_key_replaces_instead_of_adding(engine) -> None:
    for hours in (1, 2):
        add_window(engine, key="outage-7", service_ids=["orders-api"], starts_at=T0,
                   ends_at=T0 + timedelta(hours=hours))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(MaintenanceWindowRow)).scalar_one() == 1
    assert services_in_maintenance(engine, T0 + timedelta(minutes=90)) == {"orders-api"}


@pytest.mark.parametrize(
    ("services", "start", "end", "message"),
    [
        pytest.param([], T0, T0 + timedelta(hours=1), "at least one service", id="no-service"),
        pytest.param(["orders-api"], T0, T0, "is not after start", id="empty-span"),
        pytest.param(["orders-api"], T0.replace(tzinfo=None), T0 + timedelta(hours=1), "time zone", id="naive"),
        pytest.param(["billing"], T0, T0 + timedelta(hours=1), "unknown service(s): billing", id="unknown"),
    ],
)
def test_bad_windows_are_refused_and_nothing_is_written(engine, services, start, end, message) -> None:
    with pytest.raises(MaintenanceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add_window(engine, key="bad", service_ids=services, starts_at=start, ends_at=end,
                   known_services=["orders-api", "reporting"])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(MaintenanceWindowRow)).scalar_one() == 0


def test_cli_names_the_problem(engine, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--url", str(engine.url), "add", "--service", "orders-api", "--start", "2026-12-01T22:00Z",
              "--end", "yesterday"])
    assert "not an ISO-8601 time: 'yesterday'" in capsys.readouterr().err

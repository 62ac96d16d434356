"""A whole health_sweep run with dag.test(): results land in the support database."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from prep_support.catalog import load_catalog
from prep_support.schema import CheckResultRow, CheckRow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def health_sweep_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "health_sweep.py"))
    assert bag.import_errors == {}
    return bag.dags["health_sweep"]


def results_of(engine, run_id: str) -> dict[str, CheckResultRow]:
    table = CheckResultRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.run_id == run_id)).all()
    return {row.check_id: row for row in rows}


def set_app(base_url: str, app: str, **settings) -> None:
    request = urllib.request.Request(f"{base_url}/estate/apps/{app}", data=json.dumps(settings).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_live_sweep_records_every_check_and_survives_a_down_app(
    airflow_db, support_engine, estate, health_sweep_dag
) -> None:
    set_app(estate.base_url, "orders-api", status_code=500, body={"status": "error"})
    run = health_sweep_dag.test()
    assert run.state == "success", "a down application is a result, not a failed run"

    results = results_of(support_engine, run.run_id)
    assert set(results) == set(load_catalog().checks_by_key)
    assert results["orders-api/health"].status == "fail"
    assert results["orders-api/health"].detail == "HTTP 500 (expected 200)"
    assert results["payments-api/health"].status == "ok"
    assert results["inventory-api/edi-listener"].status == "ok"
    assert results["payments-api/settlement-batch"].status == "ok"
    assert results["payments-api/health"].data_interval_end <= datetime.now(UTC)
    with support_engine.connect() as connection:
        registered = connection.execute(select(CheckRow.__table__.c.id, CheckRow.__table__.c.active)).all()
    assert {row.id for row in registered if row.active} == set(results)


def test_sweep_of_a_past_interval_does_not_probe_now(airflow_db, support_engine, estate, health_sweep_dag) -> None:
    past = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
    run = health_sweep_dag.test(logical_date=past)
    assert run.state == "success"
    results = results_of(support_engine, run.run_id)
    live = {key for key, row in results.items() if row.check_id.split("/")[1] in ("health", "edi-listener")}
    assert live and all(results[key].status == "not_evaluable" for key in live)
    # SQL checks look at the past: they are evaluated for the run's interval.
    assert results["orders-api/order-volume"].status == "ok"
    assert results["orders-api/order-volume"].data_interval_end < datetime.now(UTC) - timedelta(days=2)


def test_a_sweep_whose_source_does_not_answer_is_red_and_names_the_checks(
    airflow_db, support_engine, estate, health_sweep_dag, monkeypatch
) -> None:
    """Prometheus unreachable: its check is recorded as not evaluable, the rest acts as usual, and the run is red."""
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": 9, "schema": "http", "extra": {"base_path": "/prometheus"}}))
    run = health_sweep_dag.test()
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances() if ti.task_id != "probe_checks"}
    assert states == {"register_catalog": "success", "evaluate_health": "success", "reconcile_incidents": "success",
                      "send_notifications": "success", "every_check_evaluated": "failed"}
    results = results_of(support_engine, run.run_id)
    assert results["payments-api/latency-prometheus"].status == "not_evaluable"
    assert results["payments-api/health"].status != "not_evaluable", "the other checks were probed as usual"

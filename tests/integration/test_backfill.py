"""On-call backfills data_quality the way the README says, with a real scheduler running the backfill's runs."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from prep_support.schema import IncidentRow, QualityResultRow

AIRFLOW = [sys.executable, "-m", "airflow"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FIRST, LAST = TODAY - timedelta(days=4), TODAY - timedelta(days=3)


@pytest.fixture
def airflow_env(airflow_db, support_engine, sandbox):
    """The session's Airflow home, reachable by processes we start: an API server port and a shared JWT key.

    The DAG's catchup starts at the backfill's first day, so unpausing it (tasks of paused DAGs are
    not scheduled, backfill runs included) adds only the few days since.
    """
    port = free_port()
    env = dict(os.environ, AIRFLOW__API__PORT=str(port), PREP_DQ_START_DATE=FIRST.isoformat(),
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
               AIRFLOW__API_AUTH__JWT_SECRET="backfill-test-secret",
               AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
               PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([*AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([*AIRFLOW, "dags", "unpause", "data_quality"], env=env, check=True, capture_output=True,
                   timeout=120)
    yield env
    subprocess.run([*AIRFLOW, "dags", "pause", "data_quality"], env=env, capture_output=True, timeout=120)


def wait_for_backfill(db_path: str, dag_id: str, runs: int, timeout_s: float) -> list[tuple]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sqlite3.connect(db_path) as connection:
            rows = connection.execute(
                "SELECT run_id, state, data_interval_start FROM dag_run WHERE dag_id = ? AND run_type = 'backfill'",
                (dag_id,)
            ).fetchall()
        if len(rows) >= runs and all(state in ("success", "failed") for _run, state, _start in rows):
            return rows
        time.sleep(2)
    raise AssertionError(f"backfill did not finish in {timeout_s} s: {rows}")


@pytest.mark.timeout(600)
def test_backfill_rechecks_past_days_and_replaces_their_results(airflow_env, support_engine, tmp_path) -> None:
    first, last = FIRST, LAST
    # Logical dates are the intervals' starts (02:00): from FIRST to the day after LAST covers both nights.
    created = subprocess.run(
        [*AIRFLOW, "backfill", "create", "--dag-id", "data_quality", "--from-date", first.strftime("%Y-%m-%d"),
         "--to-date", (last + timedelta(days=1)).strftime("%Y-%m-%d"), "--reprocess-behavior", "failed"],
        env=airflow_env, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr[-2000:]
    logs = tmp_path / "processes.log"
    with logs.open("wb") as log:
        processes = [subprocess.Popen([*AIRFLOW, command], env=airflow_env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True) for command in ("api-server", "scheduler")]
        try:
            runs = wait_for_backfill(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"),
                                     "data_quality", 2, timeout_s=420)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    assert all(state in ("success", "failed") for _run, state, _start in runs), logs.read_text()[-3000:]
    with support_engine.connect() as connection:
        # A run is red exactly when a fail check failed on its day: that is what the next backfill re-checks.
        for _run, state, start in runs:
            day = datetime.fromisoformat(start).replace(tzinfo=UTC)
            failing = connection.execute(select(QualityResultRow.check_id).where(
                QualityResultRow.interval_start == day, QualityResultRow.severity == "fail",
                QualityResultRow.success.is_(False))).scalars().all()
            assert (state == "failed") == bool(failing), (start, state, failing)
        days = connection.execute(
            select(QualityResultRow.interval_end).where(QualityResultRow.suite_id == "orders").distinct()).scalars()
        recorded = {day.date() for day in days}
        assert {(first + timedelta(days=1)).date(), (last + timedelta(days=1)).date()} <= recorded
        per_day = connection.execute(
            select(QualityResultRow.interval_start, QualityResultRow.check_id)
            .where(QualityResultRow.suite_id == "orders")).all()
        assert len(per_day) == len(set(per_day)), "one row per (check, day)"
        open_keys = connection.execute(select(IncidentRow.dedup_key).where(IncidentRow.status == "open")).scalars()
        assert all(key.count("/data") <= 1 for key in open_keys)

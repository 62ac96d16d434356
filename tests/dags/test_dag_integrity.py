"""Every DAG parses, quickly, and carries what operators of the platform rely on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(path for path in (ROOT / "dags").glob("*.py") if not path.name.startswith("_"))
# The DAG processor re-parses every file every 30 s and each task start parses its file again.
PARSE_BUDGET_S = 1.0


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_defines_a_dag_named_after_it(dagbag, path: Path) -> None:
    assert path.stem in dagbag.dags, f"{path.name} should define the DAG {path.stem!r}"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_is_operable(dagbag, path: Path) -> None:
    dag = dagbag.dags[path.stem]
    assert dag.owner not in ("", "airflow"), "default_args must name an owner"
    assert dag.tags, "tags let people find the DAG"
    assert dag.doc_md and len(dag.doc_md.strip()) > 80, "doc_md should say what the DAG does"
    for task in dag.tasks:
        assert (task.retries or 0) >= 2, f"{task.task_id} retries {task.retries}"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_every_task_has_a_deadline(dagbag, path: Path) -> None:
    """A task that calls out has an execution_timeout; a wait (sensor, human approval) has its own timeout
    instead, since Airflow would count a deferred wait against execution_timeout."""
    from airflow.providers.standard.operators.hitl import HITLOperator
    from airflow.sdk import BaseSensorOperator

    for task in dagbag.dags[path.stem].tasks:
        kind = getattr(task, "operator_class", type(task))
        if isinstance(kind, type) and issubclass(kind, HITLOperator):  # response_timeout (some set it at run)
            assert task.execution_timeout is None, f"{task.task_id}: a wait bounded by its response_timeout"
        elif isinstance(kind, type) and issubclass(kind, BaseSensorOperator):
            assert task.execution_timeout is None and task.timeout, f"{task.task_id}: a wait bounded by timeout"
        else:
            assert task.execution_timeout is not None, f"{task.task_id} has no execution_timeout"
            assert task.execution_timeout.total_seconds() <= 24 * 3600, f"{task.task_id}: {task.execution_timeout}"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_parses_within_budget(dagbag, path: Path) -> None:
    stats = {Path(stat.file).name: stat for stat in dagbag.dagbag_stats}
    duration = stats[path.name].duration
    seconds = duration.total_seconds() if hasattr(duration, "total_seconds") else float(duration)
    assert seconds < PARSE_BUDGET_S, f"{path.name} took {seconds:.3f} s to parse (budget {PARSE_BUDGET_S} s)"


def test_health_sweep_schedule() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "health_sweep.py")).dags["health_sweep"]
    assert dag.timetable.expression == "*/5 * * * *"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False and dag.max_active_runs == 1


def test_bad_catalog_is_the_import_error_of_the_dag_that_reads_it(tmp_path, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bad = tmp_path / "services.yaml"
    bad.write_text(textwrap.dedent("""\
        services:
          - id: payments-api
            name: Payments API
            owner: payments@example.com
            team_channel: "#payments"
            tracker_project: PAY
            criticality: critical
            checks:
              - id: health
                kind: http
                url: https://payments.example.com/health
                timeout_s: soon
        """))
    other = tmp_path / "dags"
    other.mkdir()
    (other / "health_sweep.py").write_text((ROOT / "dags" / "health_sweep.py").read_text())
    (other / "unrelated.py").write_text(textwrap.dedent('''\
        from datetime import datetime
        from airflow.sdk import dag, task

        @dag(schedule=None, start_date=datetime(2026, 1, 1))
        def unrelated():
            @task
            def noop():
                pass
            noop()

        unrelated()
        '''))
    monkeypatch.setenv("PREP_SUPPORT_CATALOG", str(bad))
    dagbag = DagBag(dag_folder=str(other))
    assert "unrelated" in dagbag.dags, "a bad catalog must not break DAGs that do not read it"
    assert "health_sweep" not in dagbag.dags
    (message,) = dagbag.import_errors.values()
    assert f"{bad} (line 12)" in message
    assert "services[0] (id 'payments-api') > checks[0] (id 'health') > field 'timeout_s'" in message


def test_data_quality_reconciles_one_run_at_a_time(dagbag) -> None:
    """Catch-up runs several intervals at once; reconciliations side by side each searched the tracker, found
    nothing and opened a ticket for the same check (two tickets for one key in a fresh `make run`)."""
    dag = dagbag.dags["data_quality"]
    assert dag.max_active_runs > 1
    for task_id in ("reconcile_quality", "send_notifications"):
        assert dag.get_task(task_id).max_active_tis_per_dag == 1, task_id

"""Every DAG tells the support channel when one of its tasks fails, with a link to the task's log."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_task_is_posted_to_the_support_channel_with_its_log_link(
    airflow_db, sandbox, tmp_path, monkeypatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    # dag.test() runs DAGs of a configured bundle: add one for this test's folder.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(ROOT / "dags")}},
        {"name": "failure-callback-test", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(tmp_path)}},
    ]))
    (tmp_path / "breaks.py").write_text(textwrap.dedent('''\
        from datetime import datetime
        from airflow.sdk import dag, task
        from notifiers.callbacks import notify_support_channel

        @dag(schedule=None, start_date=datetime(2026, 1, 1),
             default_args={"owner": "production-support", "retries": 0,
                           "on_failure_callback": notify_support_channel})
        def breaks():
            @task
            def fetch_roster():
                raise RuntimeError("roster export is empty")
            fetch_roster()

        breaks()
        '''))
    call(sandbox.base_url, "DELETE", "/slack/_sandbox/messages")
    dag = DagBag(dag_folder=str(tmp_path)).dags["breaks"]
    run = dag.test()
    assert run.state == "failed"
    [message] = call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"]
    assert message["channel_name"] == "prep-support"
    assert message["text"].startswith(":x: Prep Support task failed: *breaks.fetch_roster*")
    assert "Error: roster export is empty" in message["text"]
    assert "Log: http" in message["text"] and "dags/breaks/runs/" in message["text"]


def test_every_project_dag_has_the_failure_callback() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from notifiers.callbacks import notify_support_channel

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    for dag in bag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_support_channel in callbacks, f"{dag.dag_id}.{task.task_id}"

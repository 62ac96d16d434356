"""The support channel's failure alert quotes the task's error without its secrets or Slack markup (issue 12).

A client library's error often quotes the URL it called, credentials included, and a monitored
system's text may hold a '<!channel>'. The alert is what a whole channel reads.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Probe-url-pw-7731"


def test_the_failure_alert_redacts_url_credentials_and_escapes_mentions(
    airflow_db, sandbox, tmp_path, monkeypatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(ROOT / "dags")}},
        {"name": "alert-redaction-test", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(tmp_path)}},
    ]))
    (tmp_path / "leaky_client.py").write_text(textwrap.dedent(f'''\
        from datetime import datetime
        from airflow.sdk import dag, task
        from notifiers.callbacks import notify_support_channel

        @dag(schedule=None, start_date=datetime(2026, 1, 1),
             default_args={{"owner": "production-support", "retries": 0,
                           "on_failure_callback": notify_support_channel}})
        def leaky_client():
            @task
            def call_out():
                raise RuntimeError("GET http://svc:{PASSWORD}@inventory.example/health failed: <!channel> down")
            call_out()

        leaky_client()
        '''))
    call(sandbox.base_url, "DELETE", "/slack/_sandbox/messages")
    run = DagBag(dag_folder=str(tmp_path)).dags["leaky_client"].test()
    assert run.state == "failed"
    [alert] = call(sandbox.base_url, "GET", "/slack/_sandbox/messages")["messages"]
    assert "Error: GET http://svc:***@inventory.example/health failed: &lt;!channel&gt; down" in alert["text"]
    assert PASSWORD not in json.dumps(alert)

"""Airflow's own public REST API (``/api/v2``): what waits for a person, and which runs failed.

The Connection (``airflow_api``, type http): host = the api-server's base URL (also where the UI
links of the handover point); login/password are exchanged for a JWT at ``POST /auth/token`` (what
the FAB and simple auth managers both offer), or extra ``token`` gives a JWT directly.

API reference: https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html
(``GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/hitlDetails`` and ``GET /api/v2/dags/{dag_id}/dagRuns``;
``~`` stands for every DAG or run).
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests
from airflow.sdk.bases.hook import BaseHook

from hooks.api_connection import ApiConnection, api_connection
from hooks.http_client import send

PAGE = 100


class AirflowApiHook(BaseHook):
    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = "airflow_api"
    conn_type = "http"
    hook_name = "Airflow REST API"

    def __init__(self, *, airflow_api_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.airflow_api_conn_id = airflow_api_conn_id

    @cached_property
    def conn_params(self) -> ApiConnection:
        params = api_connection(self.get_connection(self.airflow_api_conn_id), "the Airflow REST API")
        if not params.extra.get("token") and not (params.login and params.password):
            raise ValueError(f"Connection {self.airflow_api_conn_id!r} needs login and password (or extra "
                             "'token') for the Airflow REST API")
        return params

    @property
    def ui_url(self) -> str:
        return self.conn_params.base_url

    @cached_property
    def session(self) -> requests.Session:
        params = self.conn_params
        token = params.extra.get("token")
        if not token:
            answer = send(requests.Session(), "POST", f"{params.base_url}/auth/token", timeout=params.timeout,
                          json={"username": params.login, "password": params.password})
            token = answer.json()["access_token"]
        return params.json_session(headers={"Authorization": f"Bearer {token}"})

    def _pages(self, path: str, items: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            answer = send(self.session, "GET", f"{self.conn_params.base_url}/api/v2/{path}",
                          timeout=self.conn_params.timeout, params={**params, "limit": PAGE, "offset": len(found)})
            page = answer.json()
            found += page.get(items) or []
            if not page.get(items) or len(found) >= int(page.get("total_entries") or 0):
                return found

    def waiting_for_input(self) -> list[dict[str, Any]]:
        """Every human-in-the-loop request (approvals included) whose task waits and has no answer yet."""
        return self._pages("dags/~/dagRuns/~/hitlDetails", "hitl_details",
                           {"response_received": "false", "state": "awaiting_input", "order_by": "created_at"})

    def failed_runs(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """DAG runs of every DAG that ended failed in [since, until)."""
        return self._pages("dags/~/dagRuns", "dag_runs", {
            "state": "failed", "end_date_gte": since.isoformat(), "end_date_lt": until.isoformat(),
            "order_by": "end_date"})

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.ui_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def required_action_url(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        task = f"{self.run_url(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
        return f"{task}/mapped/{map_index}/required_actions" if map_index >= 0 else f"{task}/required_actions"

    def test_connection(self) -> tuple[bool, str]:
        try:
            send(self.session, "GET", f"{self.conn_params.base_url}/api/v2/version", timeout=self.conn_params.timeout)
        except Exception as error:  # noqa: BLE001 - reported to the Connections form
            return False, str(error)
        return True, "Connected to the Airflow REST API"

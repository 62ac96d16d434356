"""Prometheus: PromQL instant and range queries through the HTTP API.

API reference: https://prometheus.io/docs/prometheus/latest/querying/api/ . Queries go as GET
(idempotent, so a 500 or a dropped connection is retried); times are sent as Unix seconds, so a
check asks about its data interval rather than about now. Prometheus answers
``{"status": "success", "data": {"resultType": ..., "result": [...]}}`` or
``{"status": "error", "errorType": ..., "error": ...}``; the API has no pagination.

The Connection (``http``): host, schema, port; login/password only behind a Basic-auth proxy;
extra ``base_path`` (route prefix), ``timeout``, ``verify`` (see :mod:`hooks.api_connection`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection, epoch_seconds, error_json
from hooks.http_client import HttpError, send


class PrometheusQueryError(RuntimeError):
    """Prometheus refused or failed a query; the message names the query and Prometheus's reason."""


class PrometheusHook(BaseHook):
    """Evaluate PromQL at a point in time or over a range, returning plain Python values."""

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "http"
    hook_name = "Prometheus"

    def __init__(self, *, prometheus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prometheus_conn_id = prometheus_conn_id

    @cached_property
    def api(self) -> ApiConnection:
        """The API root and credentials, read from the Connection on first use."""
        return api_connection(self.get_connection(self.prometheus_conn_id), "Prometheus")

    @cached_property
    def session(self) -> requests.Session:
        return self.api.json_session(basic_auth=bool(self.api.login))  # an open Prometheus takes no login

    def _get(self, path: str, params: dict[str, Any], promql: str | None = None) -> dict[str, Any]:
        url = f"{self.api.base_url}/api/v1/{path}"
        try:
            response = send(self.session, "GET", url, params=params, timeout=self.api.timeout)
        except HttpError as error:
            if promql is None:
                raise
            raise PrometheusQueryError(f"Prometheus query {promql!r} failed: {_reason(error)}") from error
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"Prometheus query {promql!r} failed: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        """Evaluate ``promql`` at ``at``: ``[{"metric": {...}, "timestamp": datetime, "value": float}]``.

        A range-vector result (``metric[5m]``) comes back with ``"values"`` as in :meth:`query_range`.
        """
        data = self._get("query", {"query": promql, "time": _seconds(at, "at")}, promql)
        return parse_result(data)

    def query_range(self, promql: str, start: datetime, end: datetime, step_s: float) -> list[dict[str, Any]]:
        """Evaluate ``promql`` at ``start``, ``start + step_s``, ... ``end``.

        Returns ``[{"metric": {...}, "values": [(datetime, float), ...]}]``, one entry per series.
        """
        if step_s <= 0:
            raise ValueError(f"step_s must be positive, got {step_s}")
        params = {"query": promql, "start": _seconds(start, "start"), "end": _seconds(end, "end"),
                  "step": f"{step_s:g}"}
        return parse_result(self._get("query_range", params, promql))

    def scalar(self, promql: str, at: datetime) -> float | None:
        """The first sample's value of ``promql`` at ``at``, or None when there is none."""
        result = self.query(promql, at)
        if not result:
            return None
        first = result[0]
        return first["value"] if "value" in first else (first["values"][0][1] if first["values"] else None)

    def test_connection(self) -> tuple[bool, str]:
        try:
            build = self._get("status/buildinfo", {})
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Connected to Prometheus {build.get('version', '(unknown version)')} at {self.api.base_url}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"schema": "Scheme (http or https)", "login": "Username (Basic-auth proxy only)",
                           "password": "Password (Basic-auth proxy only)"},
            "placeholders": {"host": "prometheus.example.com", "port": "9090", "schema": "https",
                             "extra": '{"base_path": "", "timeout": 30, "verify": true}'},
        }


def _seconds(moment: datetime, name: str) -> str:
    return f"{epoch_seconds(moment, name):.3f}"


def _reason(error: HttpError) -> str:
    """Prometheus's own ``errorType: error`` from a failed answer when it has one, else the HTTP error."""
    body = error_json(error)
    if isinstance(body, dict) and body.get("error"):
        return f"HTTP {error.status}: {body.get('errorType')}: {body['error']}"
    return str(error)


def _sample(pair: list[Any]) -> tuple[datetime, float]:
    timestamp, value = pair
    return datetime.fromtimestamp(float(timestamp), UTC), float(value)


def parse_result(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Prometheus's ``data`` (vector, matrix, scalar or string) as plain values."""
    result_type, result = data["resultType"], data["result"]
    if result_type == "scalar":
        timestamp, value = _sample(result)
        return [{"metric": {}, "timestamp": timestamp, "value": value}]
    if result_type == "string":
        return [{"metric": {}, "timestamp": datetime.fromtimestamp(float(result[0]), UTC), "value": result[1]}]
    if result_type == "vector":
        rows = []
        for series in result:
            timestamp, value = _sample(series["value"])
            rows.append({"metric": series["metric"], "timestamp": timestamp, "value": value})
        return rows
    return [{"metric": series["metric"], "values": [_sample(pair) for pair in series["values"]]} for series in result]

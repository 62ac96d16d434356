"""New Relic: NRQL through NerdGraph, New Relic's GraphQL API.

NerdGraph: https://docs.newrelic.com/docs/apis/nerdgraph/get-started/introduction-new-relic-nerdgraph/
(``POST https://api.newrelic.com/graphql``, user key in the ``API-Key`` header); NRQL through it:
https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/ . The NRQL goes
in GraphQL variables, never spliced into the document. GraphQL reports errors with HTTP 200 and
an ``errors`` list, so the hook checks the body as well as the status. NRQL has no pagination
(``LIMIT`` bounds a faceted result), so one call answers a query.

The query is a POST: a 500 is not repeated by :func:`hooks.http_client.send` (429/503 are
waited out), so a failing NerdGraph fails the task and Airflow's retries take over.

The Connection (``http``): host = ``api.newrelic.com`` (``api.eu.newrelic.com`` for EU
accounts), password = a user API key (``NRAK-...``); extra ``account_id`` (required),
``base_path``, ``timeout``.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection, epoch_seconds, error_json
from hooks.http_client import HttpError, send

NRQL_DOCUMENT = (
    "query($accountId: Int!, $nrql: Nrql!) "
    "{ actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }"
)


class NrqlError(RuntimeError):
    """NerdGraph refused or failed an NRQL query; the message names the query and the reason."""


class NewRelicHook(BaseHook):
    """Run NRQL against one New Relic account and return its result rows."""

    conn_name_attr = "newrelic_conn_id"
    default_conn_name = "newrelic_default"
    conn_type = "http"
    hook_name = "New Relic (NerdGraph)"

    def __init__(self, *, newrelic_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.newrelic_conn_id = newrelic_conn_id

    @cached_property
    def api(self) -> ApiConnection:
        """The NerdGraph root and key, read from the Connection on first use."""
        return api_connection(self.get_connection(self.newrelic_conn_id), "New Relic", needs=("password",))

    @cached_property
    def account_id(self) -> int:
        raw = self.api.extra.get("account_id")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(
                f"Connection {self.newrelic_conn_id!r} needs extra account_id (a number) for New Relic, got {raw!r}"
            ) from None

    @cached_property
    def session(self) -> requests.Session:
        return self.api.json_session(headers={"API-Key": self.api.password or ""})

    def nrql(self, query: str) -> list[dict[str, Any]]:
        """The result rows of an NRQL query, e.g. ``[{"average.duration": 0.12}]``."""
        payload = {"query": NRQL_DOCUMENT, "variables": {"accountId": self.account_id, "nrql": query}}
        try:
            response = send(self.session, "POST", f"{self.api.base_url}/graphql", json=payload,
                            timeout=self.api.timeout)
        except HttpError as error:
            reason = _messages(error_json(error))
            detail = f"HTTP {error.status}: {reason}" if reason else str(error)
            raise NrqlError(f"New Relic NRQL {query!r} failed: {detail}") from error
        body = response.json()
        if body.get("errors"):
            raise NrqlError(f"New Relic NRQL {query!r} failed: {_messages(body)}")
        return body["data"]["actor"]["account"]["nrql"]["results"]

    def nrql_value(self, query: str) -> float | None:
        """The first number of the first row (a percentile's first value), or None when there is none."""
        rows = self.nrql(query)
        for value in rows[0].values() if rows else ():
            if isinstance(value, dict):
                value = next(iter(value.values()), None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if value is None:
                return None
        return None

    @staticmethod
    def interval_clause(start: datetime, end: datetime) -> str:
        """``SINCE <ms> UNTIL <ms>`` for a data interval [start, end), in epoch milliseconds."""
        since, until = round(epoch_seconds(start, "start") * 1000), round(epoch_seconds(end, "end") * 1000)
        if until <= since:
            raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        return f"SINCE {since} UNTIL {until}"

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.nrql("SELECT count(*) FROM Transaction SINCE 1 minute ago")
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Connected to New Relic account {self.account_id} at {self.api.base_url}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "User API key (NRAK-...)"},
            "placeholders": {"host": "api.newrelic.com", "extra": '{"account_id": 1234567, "timeout": 30}'},
        }


def _messages(body: Any) -> str:
    """The messages of a GraphQL ``errors`` list, joined."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return ""
    return "; ".join(str(error.get("message", error)) for error in body["errors"] if isinstance(error, dict))

"""The hooks' requests and the stand-ins' answers, checked against golden fixtures written from vendor docs.

For ServiceNow, Statuspage, Confluence (v2 pages, v1 attachments), Microsoft Graph, Nagios, Splunk,
New Relic and Prometheus there is no machine-readable spec in ``tests/specs/``: ``tests/golden/``
holds each operation as its documentation shows it, with the page's URL (:mod:`tests.golden`). Each
test drives its hook through every operation the project calls, over real HTTP to the sandbox, then
checks every exchange the sandbox recorded meanwhile: the request carries what the documentation
requires, the answer has the documented example's fields and types, and nothing undocumented was
called. Every documented operation must have been exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import golden
from tests.sandbox_client import call


def exchanges(sandbox, system: str) -> list[dict[str, Any]]:
    return call(sandbox.base_url, "GET", f"/sandbox/exchanges?system={system}")["exchanges"]


def servicenow() -> None:
    from hooks.servicenow import ServiceNowHook

    hook = ServiceNowHook()
    created = hook.create_incident({"short_description": "Orders down", "correlation_id": "golden/servicenow"})
    hook.find_open_incident("golden/servicenow")
    hook.list_incidents("correlation_id=golden/servicenow", fields=["number", "correlation_id"])
    hook.get_incident(created["sys_id"])
    hook.add_work_note(created["sys_id"], "[prep-support:golden]\nStill failing")
    hook.journal(created["sys_id"])
    hook.attach_file(created["sys_id"], "probes.csv", b"time,status\n10:00,503\n", "text/csv")
    hook.attachments(created["sys_id"])
    hook.resolve_incident(created["sys_id"], close_notes="Recovered")


def statuspage() -> None:
    from hooks.statuspage import StatuspageHook

    hook = StatuspageHook()
    orders = hook.component_ids(["orders-api"])["orders-api"]
    hook.set_component_status(orders, "degraded_performance")
    incident = hook.create_incident(key=f"golden/{datetime.now(UTC).timestamp()}", name="Golden outage",
                                    status="investigating", body="Looking.", impact="minor",
                                    component_statuses={orders: "degraded_performance"})
    hook.update_incident(incident["id"], status="resolved", body="Fixed.", component_statuses={orders: "operational"})
    hook.get_incident(incident["id"])


def confluence() -> None:
    from hooks.confluence import ConfluenceHook

    hook = ConfluenceHook()
    title = f"Golden page {datetime.now(UTC).timestamp()}"
    page = hook.publish_page(title, "<p>one</p>")
    page = hook.publish_page(title, "<p>two</p>")
    hook.page_body(page)
    hook.attach_file(page.id, "evidence.csv", b"a\n", "text/csv")
    hook.attach_file(page.id, "evidence.csv", b"b\n", "text/csv")


def graph() -> None:
    from hooks.sharepoint import SharePointHook

    hook = SharePointHook()
    hook.upload_file("Support/Golden", "runbook.html", b"<h1>one</h1>")
    hook.upload_file("Support/Golden", "runbook.html", b"<h1>two</h1>")  # same size: compared by download
    hook.list_folder("Support/Golden")
    hook.download("Support/Golden/runbook.html")


def nagios() -> None:
    from hooks.nagios import NagiosHook

    hook = NagiosHook()
    hook.service_status("payments-api", "HTTP")
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    hook.worst_state("payments-api", "HTTP", end - timedelta(minutes=10), end)
    hook.test_connection()


def splunk() -> None:
    from hooks.splunk import SplunkHook

    hook = SplunkHook()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    hook.count("index=app_logs app=payments-api", end - timedelta(minutes=10), end)
    hook.test_connection()


def newrelic() -> None:
    from hooks.newrelic import NewRelicHook

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    window = NewRelicHook.interval_clause(end - timedelta(minutes=10), end)
    NewRelicHook().nrql(f"SELECT count(*) FROM Transaction {window}")


def prometheus() -> None:
    from hooks.prometheus import PrometheusHook

    hook = PrometheusHook()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    hook.query('app_request_latency_ms{app="payments-api"}', end)
    hook.query_range('app_errors_per_minute{app="payments-api"}', end - timedelta(minutes=10), end, 60)


SCENARIOS: dict[str, Callable[[], None]] = {
    "servicenow": servicenow, "statuspage": statuspage, "confluence": confluence, "graph": graph,
    "nagios": nagios, "splunk": splunk, "newrelic": newrelic, "prometheus": prometheus,
}


@pytest.mark.parametrize("system", list(SCENARIOS))
def test_the_hooks_exchanges_fit_the_documented_operations(sandbox, system: str) -> None:
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    fixtures = golden.load(system)
    seen = len(exchanges(sandbox, system))

    SCENARIOS[system]()

    findings, exercised = golden.check(fixtures, exchanges(sandbox, system)[seen:])
    assert not findings, "\n".join(findings)
    assert exercised == {op.name for op in fixtures.operations}, (
        f"documented but not exercised: {sorted({op.name for op in fixtures.operations} - exercised)}")


def test_the_check_finds_what_departs_from_the_documentation() -> None:
    """Without a sandbox: a request missing a required parameter, an answer missing a documented field or
    with another type, and a call no fixture documents are each named."""
    fixtures = golden.load("prometheus")

    def exchange(path: str, query: str, answer: Any) -> dict[str, Any]:
        return {"method": "GET", "path": path, "query": query, "status": 200,
                "request": {"headers": {}, "body": None}, "response": {"headers": {}, "body": {"json": answer}}}

    findings, exercised = golden.check(fixtures, [
        exchange("/prometheus/api/v1/query", "query=up", {"status": "success", "data": {"result": []}}),
        exchange("/prometheus/api/v1/query_range", "query=up&start=1&end=2&step=60",
                 {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": [], "values": []}]}}),
        exchange("/prometheus/api/v1/series", "match[]=up", {}),
    ])
    assert findings == [
        "prometheus: Instant queries (GET /prometheus/api/v1/query): query parameter 'time' missing",
        "prometheus: Instant queries (GET /prometheus/api/v1/query): data.resultType is missing",
        "prometheus: Range queries (GET /prometheus/api/v1/query_range): "
        "data.result[0].metric is array, documented as object",
        "prometheus: GET /prometheus/api/v1/series: no documented operation in tests/golden",
    ]
    assert exercised == {"Instant queries", "Range queries"}


def test_every_fixture_names_its_documentation() -> None:
    for system in SCENARIOS:
        for operation in golden.load(system).operations:
            assert operation.doc.startswith("https://"), (system, operation.name)

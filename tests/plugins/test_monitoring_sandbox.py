"""The sandbox's Prometheus, Nagios, New Relic and Splunk answer in their real APIs' shapes.

Raw HTTP, no hooks: these pin the wire format the hooks rely on, and the telemetry behind it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox import nagios, newrelic, splunk
from sandbox.estate import SEEDED_APPS
from sandbox.prometheus import PromQLError, format_value, parse
from sandbox.telemetry import BASELINES, Telemetry, event_indices

TIMEOUT = 10
APP = "orders-api"
NAGIOS_AUTH = (nagios.USERNAME, nagios.PASSWORD)
SPLUNK_AUTH = {"Authorization": f"Bearer {splunk.TOKEN}"}


@pytest.fixture(autouse=True)
def _clean_sandbox(sandbox: Any) -> Iterator[None]:
    yield
    for path in ("/sandbox/faults", "/telemetry/_sandbox/incidents"):
        requests.delete(f"{sandbox.base_url}{path}", timeout=TIMEOUT).raise_for_status()


def url(sandbox: Any, path: str) -> str:
    return f"{sandbox.base_url}{path}"


def an_hour_ago() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def test_telemetry_is_a_pure_function_of_app_and_minute() -> None:
    minute = int(an_hour_ago().timestamp()) - 3 * 86_400
    first, second = Telemetry(), Telemetry()
    assert [first.minute(app, minute) for app in SEEDED_APPS] == [second.minute(app, minute) for app in SEEDED_APPS]
    assert set(BASELINES) == set(SEEDED_APPS)
    assert len({first.minute(APP, minute + 60 * n).requests for n in range(30)}) > 1  # it varies


@pytest.mark.parametrize(
    ("count", "start_offset_ms", "end_offset_ms", "expected"),
    [
        pytest.param(6, 0, 60_000, range(0, 6), id="whole-minute"),
        pytest.param(6, 10_000, 30_000, range(1, 3), id="inside"),
        pytest.param(6, -5_000, 10_001, range(0, 2), id="overlapping-start"),
        pytest.param(0, 0, 60_000, range(0, 0), id="no-events"),
    ],
)
def test_event_indices(count: int, start_offset_ms: int, end_offset_ms: int, expected: range) -> None:
    assert event_indices(600, count, 600_000 + start_offset_ms, 600_000 + end_offset_ms) == expected


# --- Prometheus ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "error"),
    [
        pytest.param("", "no expression", id="empty"),
        pytest.param('up{job="x"', "unexpected end of input", id="unclosed"),
        pytest.param('{job=~".*"}', "at least one non-empty matcher", id="only-empty-matchers"),
        pytest.param("sum(app_requests_per_minute)", "function 'sum'", id="aggregation"),
        pytest.param("app_requests_per_minute[5m]", "bare range vector", id="range-vector"),
        pytest.param("app_requests_per_minute + 1", "operator '+'", id="binary-operator"),
        pytest.param("avg_over_time(app_requests_per_minute)", "expected type range vector", id="missing-range"),
        pytest.param("avg_over_time(app_requests_per_minute[5q])", "bad duration", id="bad-duration"),
    ],
)
def test_promql_outside_the_subset_is_refused(query: str, error: str) -> None:
    with pytest.raises(PromQLError, match=re.escape(error)):
        parse(query)


@pytest.mark.parametrize(("value", "text"), [(2.0, "2"), (0.5, "0.5"), (1e-05, "0.00001"), (float("nan"), "NaN")])
def test_values_are_formatted_as_prometheus_does(value: float, text: str) -> None:
    assert format_value(value) == text


def test_prometheus_instant_and_range_queries(sandbox: Any) -> None:
    at = an_hour_ago()
    instant = requests.post(url(sandbox, "/prometheus/api/v1/query"), timeout=TIMEOUT,
                            data={"query": 'app_requests_per_minute{app=~"orders-.*"}', "time": at.isoformat()})
    assert instant.status_code == 200
    expected_requests = Telemetry().minute(APP, int(at.timestamp()) - 60).requests
    assert instant.json() == {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "app_requests_per_minute", "app": APP, "job": "estate"},
         "value": [int(at.timestamp()), str(expected_requests)]}]}}

    ranged = requests.get(url(sandbox, "/prometheus/api/v1/query_range"), timeout=TIMEOUT, params={
        "query": f'max_over_time(app_error_ratio{{app="{APP}"}}[2m])', "start": at.timestamp(),
        "end": at.timestamp() + 300, "step": "1m"}).json()
    assert ranged["data"]["resultType"] == "matrix"
    (series,) = ranged["data"]["result"]
    assert series["metric"] == {"app": APP, "job": "estate"}  # a function drops __name__
    assert [point[0] for point in series["values"]] == [int(at.timestamp()) + 60 * n for n in range(6)]


def test_prometheus_has_no_samples_from_the_future(sandbox: Any) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    body = requests.get(url(sandbox, "/prometheus/api/v1/query"), timeout=TIMEOUT,
                        params={"query": "app_requests_per_minute", "time": later.timestamp()}).json()
    assert body == {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        pytest.param("query", {"query": "rate(x[1m])"}, "function 'rate'", id="unsupported"),
        pytest.param("query", {"query": "app_requests_per_minute", "time": "yesterday"}, 'parameter "time"',
                     id="bad-time"),
        pytest.param("query_range", {"query": "app_requests_per_minute", "start": "0", "end": "100000000",
                                     "step": "1"}, "11,000 points", id="too-many-points"),
        pytest.param("query_range", {"query": "app_requests_per_minute", "start": "100", "end": "50", "step": "1"},
                     "must not be before", id="end-before-start"),
    ],
)
def test_prometheus_errors_are_bad_data(sandbox: Any, path: str, params: dict[str, str], error: str) -> None:
    response = requests.get(url(sandbox, f"/prometheus/api/v1/{path}"), params=params, timeout=TIMEOUT)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["errorType"]) == ("error", "bad_data") and error in body["error"]


# --- Nagios -------------------------------------------------------------------------------


def test_nagios_cgis_need_basic_auth(sandbox: Any) -> None:
    response = requests.get(url(sandbox, "/nagios/cgi-bin/statusjson.cgi"), params={"query": "programstatus"},
                            timeout=TIMEOUT, auth=("nagiosadmin", "wrong"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Nagios Access"'


@pytest.mark.parametrize(("formatoptions", "status", "state_type"), [("", 2, 1), ("enumerate", "ok", "hard")])
def test_nagios_service_status(sandbox: Any, formatoptions: str, status: Any, state_type: Any) -> None:
    body = requests.get(url(sandbox, "/nagios/cgi-bin/statusjson.cgi"), auth=NAGIOS_AUTH, timeout=TIMEOUT, params={
        "query": "service", "hostname": APP, "servicedescription": "HTTP", "formatoptions": formatoptions}).json()
    assert body["format_version"] == 0
    assert body["result"]["type_code"] == 0 and body["result"]["type_text"] == "Success"
    service = body["data"]["service"]
    assert (service["host_name"], service["description"], service["status"], service["state_type"]) == (
        APP, "HTTP", status, state_type)
    assert service["last_check"] % 60_000 == 0 and service["plugin_output"].startswith("HTTP OK")


def test_nagios_refusals_answer_200_with_a_type_code(sandbox: Any) -> None:
    body = requests.get(url(sandbox, "/nagios/cgi-bin/archivejson.cgi"), auth=NAGIOS_AUTH, timeout=TIMEOUT,
                        params={"query": "statechangelist", "objecttype": "service", "hostname": APP,
                                "servicedescription": "HTTP", "starttime": "-3600"}).json()
    assert body["result"]["type_code"] == 4 and "endtime" in body["result"]["message"]
    assert "data" not in body


def test_nagios_statechangelist(sandbox: Any) -> None:
    start = an_hour_ago()
    requests.put(url(sandbox, f"/telemetry/_sandbox/incidents/{APP}"), timeout=TIMEOUT, json={
        "start": (start - timedelta(minutes=5)).isoformat(), "end": (start + timedelta(minutes=5)).isoformat(),
        "nagios_state": "unknown"}).raise_for_status()
    body = requests.get(url(sandbox, "/nagios/cgi-bin/archivejson.cgi"), auth=NAGIOS_AUTH, timeout=TIMEOUT, params={
        "query": "statechangelist", "objecttype": "service", "hostname": APP, "servicedescription": "HTTP",
        "starttime": int(start.timestamp()), "endtime": int(start.timestamp()) + 600}).json()
    entries = body["data"]["statechangelist"]
    assert [(entry["timestamp"] // 1000 - int(start.timestamp()), entry["state"], entry["plugin_output"])
            for entry in entries] == [
        (0, nagios.ARCHIVE_STATES["unknown"], "Initial Service Pseudo-State"),
        (300, nagios.ARCHIVE_STATES["ok"], entries[1]["plugin_output"]),
        (600, nagios.ARCHIVE_STATES["ok"], "Final Service Pseudo-State"),
    ]
    assert entries[1]["plugin_output"].startswith("HTTP OK") and entries[1]["host_name"] == APP


# --- New Relic ----------------------------------------------------------------------------


def nerdgraph(sandbox: Any, body: dict[str, Any], key: str = newrelic.API_KEY) -> requests.Response:
    return requests.post(url(sandbox, "/newrelic/graphql"), json=body, headers={"API-Key": key}, timeout=TIMEOUT)


def test_nerdgraph_answers_inline_and_variables_forms_alike(sandbox: Any) -> None:
    # A fixed window: "2 hours ago" would move between the two requests and may cross a sample.
    until_ms = (int(time.time()) // 3600 - 1) * 3600 * 1000
    nrql = (f"SELECT count(*), percentile(duration, 95) AS 'p95' FROM Transaction WHERE appName IN ('{APP}') "
            f"SINCE {until_ms - 3600 * 1000} UNTIL {until_ms}")
    inline = nerdgraph(sandbox, {"query": f"{{ actor {{ account(id: {newrelic.ACCOUNT_ID}) {{ nrql(query: "
                                          f"{json.dumps(nrql)}) {{ results }} }} }} }}"})
    variables = nerdgraph(sandbox, {
        "query": "query($id: Int!, $q: Nrql!) { actor { account(id: $id) { nrql(query: $q) { results } } } }",
        "variables": {"id": newrelic.ACCOUNT_ID, "q": nrql}})
    assert inline.status_code == variables.status_code == 200
    (row,) = inline.json()["data"]["actor"]["account"]["nrql"]["results"]
    assert set(row) == {"count", "p95"} and set(row["p95"]) == {"95"} and row["count"] > 0
    assert variables.json() == inline.json()


@pytest.mark.parametrize(
    ("body", "key", "status", "message"),
    [
        pytest.param({"query": "{ actor { user { email } } }"}, newrelic.API_KEY, 200, "answers only",
                     id="other-graphql"),
        pytest.param({"query": '{ actor { account(id: 1) { nrql(query: "SELECT count(*) FROM Transaction") '
                               "{ results } } } }"}, newrelic.API_KEY, 200, "Account 1 not found", id="other-account"),
        pytest.param({"query": '{ actor { account(id: 1234567) { nrql(query: "SELECT count(*) FROM Transaction '
                               'FACET appName") { results } } } }'}, newrelic.API_KEY, 200, "unsupported",
                     id="facet"),
        pytest.param({"query": "{}"}, "NRAK-WRONG", 401, "Invalid API key", id="wrong-key"),
    ],
)
def test_nerdgraph_errors(sandbox: Any, body: dict[str, Any], key: str, status: int, message: str) -> None:
    response = nerdgraph(sandbox, body, key)
    assert response.status_code == status
    assert message in response.json()["errors"][0]["message"]


# --- Splunk -------------------------------------------------------------------------------


def export(sandbox: Any, search: str, **form: str) -> requests.Response:
    start = an_hour_ago()
    data = {"search": search, "output_mode": "json", "earliest_time": str(start.timestamp()),
            "latest_time": str(start.timestamp() + 300), **form}
    return requests.post(url(sandbox, "/splunk/services/search/jobs/export"), data=data, headers=SPLUNK_AUTH,
                         timeout=TIMEOUT)


def test_splunk_export_streams_a_preview_then_the_final_row(sandbox: Any) -> None:
    response = export(sandbox, f"search index=app_logs app={APP} | stats count AS hits")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [(row["preview"], row.get("lastrow", False)) for row in rows] == [(True, False), (False, True)]
    minutes = Telemetry().minutes(APP, an_hour_ago().timestamp(), an_hour_ago().timestamp() + 300)
    assert rows[-1]["result"] == {"hits": str(sum(minute.requests for minute in minutes))}


def test_splunk_export_streams_events_with_offsets(sandbox: Any) -> None:
    response = export(sandbox, f"search index=app_logs host={APP} level=error | head 4")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [row["offset"] for row in rows] == list(range(len(rows))) and len(rows) <= 4
    assert all(row["result"]["level"] == "ERROR" and row["result"]["status"] == "500" for row in rows)


@pytest.mark.parametrize(
    ("search", "form", "headers", "status", "text"),
    [
        pytest.param("index=app_logs", {}, SPLUNK_AUTH, 400, "Unknown search command 'index'", id="no-search"),
        pytest.param("search index=app_logs | eval x=1", {}, SPLUNK_AUTH, 400, "eval", id="unsupported"),
        pytest.param("search index=app_logs", {"earliest_time": ""}, SPLUNK_AUTH, 400, "earliest_time",
                     id="no-earliest"),
        pytest.param("search index=app_logs", {}, {"Authorization": "Bearer nope"}, 401, "not properly",
                     id="bad-token"),
    ],
)
def test_splunk_errors_are_messages(sandbox: Any, search: str, form: dict[str, str], headers: dict[str, str],
                                    status: int, text: str) -> None:
    start = an_hour_ago().timestamp()
    data = {"search": search, "output_mode": "json", "earliest_time": str(start), **form}
    response = requests.post(url(sandbox, "/splunk/services/search/jobs/export"), data=data, headers=headers,
                             timeout=TIMEOUT)
    assert response.status_code == status
    assert text in response.json()["messages"][0]["text"]


# --- Incidents and faults -----------------------------------------------------------------


def test_incidents_are_listed_replaced_and_cleared(sandbox: Any) -> None:
    path = url(sandbox, f"/telemetry/_sandbox/incidents/{APP}")
    assert requests.put(url(sandbox, "/telemetry/_sandbox/incidents/no-such-app"), timeout=TIMEOUT,
                        json={"start": "2024-05-01T10:00:00Z"}).status_code == 404
    requests.put(path, json={"start": "2024-05-01T10:00:30Z", "latency_factor": 2}, timeout=TIMEOUT)
    requests.put(path, json={"start": "2024-05-01T11:00:00Z", "end": "2024-05-01T11:30:00Z"}, timeout=TIMEOUT)
    listed = requests.get(url(sandbox, "/telemetry/_sandbox/incidents"), timeout=TIMEOUT).json()["incidents"]
    assert listed == {APP: {"start": "2024-05-01T11:00:00+00:00", "end": "2024-05-01T11:30:00+00:00",
                            "latency_factor": 1.0, "error_rate": None, "nagios_state": "critical",
                            "nagios_since": None}}
    assert requests.delete(path, timeout=TIMEOUT).json() == {"app": APP, "cleared": True}


@pytest.mark.parametrize(
    ("system", "call", "check"),
    [
        pytest.param("prometheus", lambda base: requests.get(f"{base}/prometheus/api/v1/query", timeout=TIMEOUT,
                                                             params={"query": "app_requests_per_minute"}),
                     lambda body: body["status"] == "error" and body["errorType"] == "internal", id="prometheus"),
        pytest.param("nagios", lambda base: requests.get(f"{base}/nagios/cgi-bin/statusjson.cgi", timeout=TIMEOUT,
                                                         auth=NAGIOS_AUTH, params={"query": "programstatus"}),
                     lambda body: body["result"]["type_text"] == "Internal Server Error", id="nagios"),
        pytest.param("newrelic", lambda base: requests.post(f"{base}/newrelic/graphql", json={}, timeout=TIMEOUT),
                     lambda body: body["errors"][0]["extensions"]["errorClass"] == "SERVER_ERROR", id="newrelic"),
        pytest.param("splunk", lambda base: requests.post(f"{base}/splunk/services/search/jobs/export",
                                                          timeout=TIMEOUT),
                     lambda body: body["messages"][0]["type"] == "ERROR", id="splunk"),
    ],
)
def test_injected_faults_answer_in_each_systems_shape(sandbox: Any, system: str, call: Any, check: Any) -> None:
    requests.put(url(sandbox, f"/sandbox/faults/{system}"), json={"status": 500}, timeout=TIMEOUT).raise_for_status()
    response = call(sandbox.base_url)
    assert response.status_code == 500
    assert check(response.json())


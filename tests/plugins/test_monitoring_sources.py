"""The monitoring hooks (Prometheus, Nagios, New Relic, Splunk) against the sandbox, over real HTTP.

What a health check needs from them: the monitoring system's view of a data interval, now
or three days ago, the same for every source when an incident is injected, clear errors for
bad queries, and the other side's limits honoured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from hooks.http_client import HttpError
from hooks.nagios import NagiosHook, NagiosQueryError
from hooks.newrelic import NewRelicHook, NrqlError
from hooks.prometheus import PrometheusHook, PrometheusQueryError
from hooks.splunk import SplunkHook, SplunkSearchError
from sandbox.newrelic import ACCOUNT_ID
from sandbox.telemetry import Incident, Telemetry

APP = "payments-api"
TIMEOUT = 10
WINDOW = timedelta(minutes=10)
Interval = tuple[datetime, datetime]


def _clear(sandbox: Any) -> None:
    for path in ("/sandbox/faults", "/telemetry/_sandbox/incidents"):
        requests.delete(f"{sandbox.base_url}{path}", timeout=TIMEOUT).raise_for_status()


@pytest.fixture(autouse=True)
def _clean_sandbox(sandbox: Any) -> Iterator[None]:
    """No faults and no incidents before and after each test."""
    _clear(sandbox)
    yield
    _clear(sandbox)


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def recent() -> Interval:
    """The last ten complete minutes."""
    end = this_minute()
    return end - WINDOW, end


@pytest.fixture
def past() -> Interval:
    """Ten minutes three days ago, as a backfilled run would ask about."""
    start = this_minute() - timedelta(days=3)
    return start, start + WINDOW


def set_fault(sandbox: Any, system: str, plan: dict[str, Any]) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/{system}", json=plan, timeout=TIMEOUT).raise_for_status()


def put_incident(sandbox: Any, app: str, incident: dict[str, Any]) -> None:
    requests.put(f"{sandbox.base_url}/telemetry/_sandbox/incidents/{app}", json=incident,
                 timeout=TIMEOUT).raise_for_status()


def journal(sandbox: Any, system: str) -> list[dict[str, Any]]:
    response = requests.get(f"{sandbox.base_url}/sandbox/requests/{system}", timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["requests"]


def captured_requests(hook: Any) -> list[requests.PreparedRequest]:
    """Every request the hook's session sends from now on (for POST bodies the journal does not keep)."""
    sent: list[requests.PreparedRequest] = []
    hook.session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    return sent


def minutes_of(interval: Interval) -> str:
    return f"{int((interval[1] - interval[0]).total_seconds() // 60)}m"


# What each source says about APP in an interval. Prometheus evaluates at the end with a range
# as long as the interval: its samples at T describe the minute that ended at T.
def prometheus_over(function: str, metric: str) -> Callable[[Interval], float | None]:
    return lambda interval: PrometheusHook().scalar(
        f'{function}({metric}{{app="{APP}"}}[{minutes_of(interval)}])', interval[1])


def newrelic(select: str, where: str = "") -> Callable[[Interval], float | None]:
    return lambda interval: NewRelicHook().nrql_value(
        f"SELECT {select} FROM Transaction WHERE appName = '{APP}'{where} {NewRelicHook.interval_clause(*interval)}")


def splunk_count(terms: str) -> Callable[[Interval], int]:
    return lambda interval: SplunkHook().count(f"index=app_logs app={APP} {terms}".strip(), *interval)


def nagios_worst(interval: Interval) -> str:
    return NagiosHook().worst_state(APP, "HTTP", *interval)


READINGS: dict[str, Callable[[Interval], Any]] = {
    "prometheus_requests": prometheus_over("sum_over_time", "app_requests_per_minute"),
    "prometheus_errors": prometheus_over("sum_over_time", "app_errors_per_minute"),
    "prometheus_latency_ms": prometheus_over("avg_over_time", "app_request_latency_ms"),
    "newrelic_requests": newrelic("count(*)"),
    "newrelic_errors": newrelic("count(*)", " AND error IS true"),
    "newrelic_duration_s": newrelic("average(duration)"),
    "splunk_requests": splunk_count(""),
    "splunk_errors": splunk_count("level=ERROR"),
    "nagios_worst": nagios_worst,
}


def read_all(interval: Interval) -> dict[str, Any]:
    return {name: read(interval) for name, read in READINGS.items()}


def expected(interval: Interval, incident: Incident | None = None) -> dict[str, Any]:
    """What the sources should say, from the telemetry's pure function."""
    telemetry = Telemetry()
    if incident is not None:
        telemetry.incidents[APP] = incident
    minutes = telemetry.minutes(APP, interval[0].timestamp(), interval[1].timestamp())
    requests_total = sum(minute.requests for minute in minutes)
    errors = sum(minute.errors for minute in minutes)
    return {
        "prometheus_requests": requests_total,
        "prometheus_errors": errors,
        "prometheus_latency_ms": pytest.approx(sum(minute.latency_ms for minute in minutes) / len(minutes)),
        "newrelic_requests": requests_total,
        "newrelic_errors": errors,
        "newrelic_duration_s": pytest.approx(
            sum(minute.latency_ms * minute.requests for minute in minutes) / requests_total / 1000, rel=1e-5),
        "splunk_requests": requests_total,
        "splunk_errors": errors,
        "nagios_worst": incident.nagios_state if incident is not None else "ok",
    }


@pytest.mark.parametrize("when", ["recent", "past"])
@pytest.mark.parametrize("reading", list(READINGS))
def test_each_source_reports_the_interval(sandbox: Any, request: pytest.FixtureRequest, when: str,
                                          reading: str) -> None:
    interval = request.getfixturevalue(when)
    assert READINGS[reading](interval) == expected(interval)[reading]


def test_sources_agree_with_each_other(sandbox: Any, past: Interval) -> None:
    seen = read_all(past)
    assert seen["prometheus_requests"] == seen["newrelic_requests"] == seen["splunk_requests"] > 0
    assert seen["prometheus_errors"] == seen["newrelic_errors"] == seen["splunk_errors"]


def test_an_incident_changes_exactly_its_interval_in_every_source(sandbox: Any, past: Interval) -> None:
    start, end = past
    before, after = (start - WINDOW, start), (end, end + WINDOW)
    baseline = {interval: read_all(interval) for interval in (before, past, after)}
    incident = {"start": start.isoformat(), "end": end.isoformat(), "latency_factor": 5, "error_rate": 0.5,
                "nagios_state": "critical"}
    put_incident(sandbox, APP, incident)

    during = read_all(past)
    assert during == expected(past, Incident.model_validate(incident))
    assert during["nagios_worst"] == "critical"
    assert during["prometheus_requests"] == baseline[past]["prometheus_requests"]
    assert during["prometheus_errors"] == during["newrelic_errors"] == during["splunk_errors"] == pytest.approx(
        during["prometheus_requests"] / 2, abs=5)  # each minute's errors are rounded
    assert during["prometheus_latency_ms"] == pytest.approx(5 * baseline[past]["prometheus_latency_ms"], rel=1e-4)
    assert during["newrelic_duration_s"] == pytest.approx(5 * baseline[past]["newrelic_duration_s"], rel=1e-4)
    assert read_all(before) == baseline[before]
    assert read_all(after) == baseline[after]


def test_an_ongoing_incident_shows_in_the_current_status(sandbox: Any) -> None:
    before = NagiosHook().service_status(APP, "HTTP")
    began = this_minute() - timedelta(minutes=5)
    put_incident(sandbox, APP, {"start": began.isoformat(), "end": None, "latency_factor": 5,
                                "nagios_state": "warning"})
    status = NagiosHook().service_status(APP, "HTTP")
    assert before["state"] == "ok" and before["output"].startswith("HTTP OK")
    assert status["state"] == "warning" and status["output"].startswith("HTTP WARNING")
    assert began < status["last_check"] <= datetime.now(UTC)
    assert status["last_state_change"] == began
    assert NagiosHook().service_status("orders-api", "HTTP")["state"] == "ok"


def test_prometheus_sends_the_evaluation_time_and_range(sandbox: Any, past: Interval) -> None:
    start, end = past
    seen = len(journal(sandbox, "prometheus"))
    hook = PrometheusHook()
    series = hook.query_range(f'app_errors_per_minute{{app="{APP}"}}', start, end, 60)
    latest = hook.query(f'app_request_latency_ms{{app="{APP}"}}', end)

    sent = [parse_qs(entry["query"]) for entry in journal(sandbox, "prometheus")[seen:]]
    assert sent[0] == {"query": [f'app_errors_per_minute{{app="{APP}"}}'], "start": [f"{start.timestamp():.3f}"],
                       "end": [f"{end.timestamp():.3f}"], "step": ["60"]}
    assert sent[1] == {"query": [f'app_request_latency_ms{{app="{APP}"}}'], "time": [f"{end.timestamp():.3f}"]}
    assert [at for at, _value in series[0]["values"]] == [start + timedelta(minutes=n) for n in range(11)]
    assert series[0]["metric"] == {"__name__": "app_errors_per_minute", "app": APP, "job": "estate"}
    assert latest[0]["timestamp"] == end and isinstance(latest[0]["value"], float)


def test_nagios_asks_the_archive_for_the_interval_page_by_page(sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                                                               past: Interval) -> None:
    monkeypatch.setattr("hooks.nagios.PAGE_SIZE", 1)
    start = past[0]
    put_incident(sandbox, APP, {"start": (start + timedelta(minutes=3)).isoformat(),
                                "end": (start + timedelta(minutes=6)).isoformat(), "nagios_state": "critical"})
    seen = len(journal(sandbox, "nagios"))
    changes = NagiosHook().state_changes(APP, "HTTP", *past)

    sent = [parse_qs(entry["query"]) for entry in journal(sandbox, "nagios")[seen:]]
    assert [query["start"] for query in sent] == [["0"], ["1"], ["2"]]
    assert all(query["count"] == ["1"] for query in sent)
    assert sent[0]["starttime"] == [str(int(start.timestamp()))]
    assert sent[0]["endtime"] == [str(int(past[1].timestamp()) - 1)]  # Nagios includes endtime
    assert (sent[0]["hostname"], sent[0]["servicedescription"], sent[0]["objecttype"]) == ([APP], ["HTTP"],
                                                                                          ["service"])
    # The Initial pseudo-state, then the changes; the Final pseudo-state is not the service's (below).
    assert [(entry["at"] - start, entry["state"]) for entry in changes] == [
        (timedelta(0), "ok"),
        (timedelta(minutes=3), "critical"),
        (timedelta(minutes=6), "ok"),
    ]


@pytest.fixture
def mid_morning() -> Interval:
    """10:00-10:10 UTC three days ago: the rest of that day is in the same Nagios archive file."""
    start = this_minute().replace(hour=10, minute=0) - timedelta(days=3)
    return start, start + WINDOW


def archive_answer(sandbox: Any, interval: Interval) -> list[dict[str, Any]]:
    response = requests.get(
        f"{sandbox.base_url}/nagios/cgi-bin/archivejson.cgi", auth=("nagiosadmin", "nagios-sandbox"),
        params={"query": "statechangelist", "objecttype": "service", "hostname": APP, "servicedescription": "HTTP",
                "starttime": int(interval[0].timestamp()), "endtime": int(interval[1].timestamp()) - 1},
        timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["data"]["statechangelist"]


def test_nagios_initial_pseudo_state_without_data_is_not_a_state(sandbox: Any, mid_morning: Interval) -> None:
    """A service Nagios began checking inside the interval: the Initial pseudo-state says 0 (no data)."""
    start = mid_morning[0]
    put_incident(sandbox, APP, {"start": (start + timedelta(minutes=3)).isoformat(),
                                "end": (start + timedelta(minutes=6)).isoformat(), "nagios_state": "warning",
                                "nagios_since": (start + timedelta(minutes=2)).isoformat()})
    initial = archive_answer(sandbox, mid_morning)[0]
    assert (initial["plugin_output"], initial["state"]) == ("Initial Service Pseudo-State", 0)

    assert NagiosHook().worst_state(APP, "HTTP", *mid_morning) == "warning"
    changes = NagiosHook().state_changes(APP, "HTTP", *mid_morning)
    assert [(entry["at"] - start, entry["state"]) for entry in changes] == [
        (timedelta(minutes=3), "warning"), (timedelta(minutes=6), "ok")]


def test_nagios_final_pseudo_state_of_another_service_is_not_counted(sandbox: Any, mid_morning: Interval) -> None:
    """Nagios fills the Final pseudo-state with the last entry it read: here another service's critical."""
    after = mid_morning[1] + timedelta(minutes=5)
    put_incident(sandbox, "orders-api", {"start": after.isoformat(), "end": (after + timedelta(minutes=5)).isoformat(),
                                         "nagios_state": "ok"})
    put_incident(sandbox, "auth-gateway", {"start": after.isoformat(), "nagios_state": "critical"})
    final = archive_answer(sandbox, mid_morning)[-1]
    assert (final["plugin_output"], final["state"]) == ("Final Service Pseudo-State", 32)

    assert NagiosHook().worst_state(APP, "HTTP", *mid_morning) == "ok"
    put_incident(sandbox, APP, {"start": (mid_morning[0] - timedelta(hours=1)).isoformat(),
                                "end": (mid_morning[1] + timedelta(hours=1)).isoformat(), "nagios_state": "warning"})
    assert NagiosHook().worst_state(APP, "HTTP", *mid_morning) == "warning"  # in force since before the interval


def test_newrelic_sends_the_interval_and_account_as_variables(sandbox: Any, past: Interval) -> None:
    hook = NewRelicHook()
    sent = captured_requests(hook)
    hook.nrql(f"SELECT count(*) FROM Transaction {hook.interval_clause(*past)}")

    body = json.loads(sent[0].body)
    since, until = (round(moment.timestamp() * 1000) for moment in past)
    assert body["variables"] == {"accountId": ACCOUNT_ID,
                                 "nrql": f"SELECT count(*) FROM Transaction SINCE {since} UNTIL {until}"}
    assert "nrql(query: $nrql)" in body["query"]
    assert sent[0].headers["API-Key"].startswith("NRAK-")


def test_splunk_sends_the_interval_and_a_token(sandbox: Any, past: Interval) -> None:
    hook = SplunkHook()
    sent = captured_requests(hook)
    hook.count(f"index=app_logs app={APP} level=ERROR", *past)

    form = parse_qs(sent[0].body)
    assert form == {"search": [f"search index=app_logs app={APP} level=ERROR | stats count"],
                    "output_mode": ["json"], "earliest_time": [f"{past[0].timestamp():.3f}"],
                    "latest_time": [f"{past[1].timestamp():.3f}"]}
    assert sent[0].headers["Authorization"] == f"Bearer {hook.api.password}"


def test_splunk_export_returns_final_events_newest_first(sandbox: Any, past: Interval) -> None:
    events = SplunkHook().export(f"search index=app_logs app={APP} level=ERROR | head 3", *past)
    assert len(events) == min(3, expected(past)["splunk_errors"])
    assert [event["level"] for event in events] == ["ERROR"] * len(events)
    times = [datetime.fromisoformat(event["_time"]) for event in events]
    assert times == sorted(times, reverse=True) and all(past[0] <= moment < past[1] for moment in times)


@pytest.mark.parametrize(
    ("call", "query", "error"),
    [
        pytest.param(lambda at: PrometheusHook().query('app_errors_per_minute{app="x"', at),
                     'app_errors_per_minute{app="x"', PrometheusQueryError, id="promql-unclosed-brace"),
        pytest.param(lambda at: PrometheusHook().query("rate(app_requests_per_minute[5m])", at),
                     "rate(app_requests_per_minute[5m])", PrometheusQueryError, id="promql-unsupported-function"),
        pytest.param(lambda at: NewRelicHook().nrql("SELEC count(*) FROM Transaction"),
                     "SELEC count(*) FROM Transaction", NrqlError, id="nrql-syntax"),
        pytest.param(lambda at: NewRelicHook().nrql("SELECT uniqueCount(user) FROM Transaction"),
                     "SELECT uniqueCount(user) FROM Transaction", NrqlError, id="nrql-unsupported-function"),
        pytest.param(lambda at: SplunkHook().export("index=app_logs | timechart count", at - WINDOW, at),
                     "index=app_logs | timechart count", SplunkSearchError, id="spl-unsupported-command"),
        pytest.param(lambda at: SplunkHook().count("index=app_logs latency_ms>5", at - WINDOW, at),
                     "index=app_logs latency_ms>5", SplunkSearchError, id="spl-bad-term"),
    ],
)
def test_a_bad_query_fails_naming_the_query(sandbox: Any, past: Interval, call: Callable[[datetime], Any],
                                            query: str, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        call(past[1])
    assert query in str(raised.value)


def test_nagios_names_an_unknown_service(sandbox: Any) -> None:
    with pytest.raises(NagiosQueryError, match="hostname=no-such-app.*could not be found"):
        NagiosHook().service_status("no-such-app", "HTTP")


READINGS_BY_SYSTEM = {"prometheus": "prometheus_requests", "nagios": "nagios_worst",
                      "newrelic": "newrelic_requests", "splunk": "splunk_requests"}
SYSTEM_CALLS = [
    pytest.param("prometheus", READINGS["prometheus_requests"], id="prometheus"),
    pytest.param("nagios", READINGS["nagios_worst"], id="nagios"),
    pytest.param("newrelic", READINGS["newrelic_requests"], id="newrelic"),
    pytest.param("splunk", READINGS["splunk_requests"], id="splunk"),
]


@pytest.mark.parametrize(("system", "read"), SYSTEM_CALLS)
def test_a_rate_limit_is_waited_out(sandbox: Any, past: Interval, system: str,
                                    read: Callable[[Interval], Any]) -> None:
    set_fault(sandbox, system, {"status": 429, "retry_after_s": 1, "times": 1})
    seen = len(journal(sandbox, system))
    began = time.monotonic()
    value = read(past)
    assert time.monotonic() - began >= 1.0
    assert value == expected(past)[READINGS_BY_SYSTEM[system]]
    statuses = [entry["status"] for entry in journal(sandbox, system)[seen:]]
    # Nagios asks again when nothing of the service was logged in the interval (the state at its start)
    assert statuses == [429, 200] + ([200] if system == "nagios" else [])


@pytest.mark.parametrize(
    ("system", "read", "retried"),
    [
        pytest.param("prometheus", READINGS["prometheus_requests"], True, id="prometheus-get-retried"),
        pytest.param("nagios", READINGS["nagios_worst"], True, id="nagios-get-retried"),
        pytest.param("newrelic", READINGS["newrelic_requests"], False, id="newrelic-post-not-repeated"),
        pytest.param("splunk", READINGS["splunk_requests"], False, id="splunk-post-not-repeated"),
    ],
)
def test_a_server_error_once(sandbox: Any, past: Interval, system: str, read: Callable[[Interval], Any],
                             retried: bool) -> None:
    set_fault(sandbox, system, {"status": 500, "times": 1})
    seen = len(journal(sandbox, system))
    if retried:
        assert read(past) == expected(past)[READINGS_BY_SYSTEM[system]]
        statuses = [entry["status"] for entry in journal(sandbox, system)[seen:]]
        assert statuses == [500, 200] + ([200] if system == "nagios" else [])  # see test_a_rate_limit_is_waited_out
    else:
        with pytest.raises((NrqlError, SplunkSearchError), match="injected fault: HTTP 500"):
            read(past)
        assert [entry["status"] for entry in journal(sandbox, system)[seen:]] == [500]


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(PrometheusHook, id="prometheus"),
        pytest.param(NagiosHook, id="nagios"),
        pytest.param(NewRelicHook, id="newrelic"),
        pytest.param(SplunkHook, id="splunk"),
    ],
)
def test_test_connection_succeeds(sandbox: Any, hook: type) -> None:
    ok, message = hook().test_connection()
    assert ok, message
    assert sandbox.base_url in message


@pytest.mark.parametrize(
    ("env", "hook"),
    [
        pytest.param({"conn_type": "http", "host": "127.0.0.1", "schema": "http", "login": "nagiosadmin",
                      "password": "wrong", "extra": {"base_path": "/nagios"}},
                     lambda conn_id: NagiosHook(nagios_conn_id=conn_id), id="nagios-wrong-password"),
        pytest.param({"conn_type": "http", "host": "127.0.0.1", "schema": "http", "password": "NRAK-WRONG",
                      "extra": {"base_path": "/newrelic", "account_id": ACCOUNT_ID}},
                     lambda conn_id: NewRelicHook(newrelic_conn_id=conn_id), id="newrelic-wrong-key"),
        pytest.param({"conn_type": "http", "host": "127.0.0.1", "schema": "http", "password": "wrong",
                      "extra": {"base_path": "/splunk"}},
                     lambda conn_id: SplunkHook(splunk_conn_id=conn_id), id="splunk-wrong-token"),
    ],
)
def test_test_connection_reports_refused_credentials(sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                                                     env: dict[str, Any], hook: Callable[[str], Any]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MONITORING_BAD_CREDENTIALS", json.dumps({**env, "port": sandbox.http_port}))
    ok, message = hook("monitoring_bad_credentials").test_connection()
    assert not ok and "401" in message


def test_hooks_read_their_connection_on_first_use_only(sandbox: Any, past: Interval) -> None:
    hook = PrometheusHook(prometheus_conn_id="no_such_connection")  # nothing read yet
    with pytest.raises(Exception, match="no_such_connection"):
        hook.query("app_requests_per_minute", past[1])


def test_newrelic_needs_an_account_id(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NEWRELIC_NO_ACCOUNT", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": sandbox.http_port, "schema": "http",
         "password": "NRAK-X", "extra": {"base_path": "/newrelic"}}))
    with pytest.raises(ValueError, match="'newrelic_no_account' needs extra account_id"):
        NewRelicHook(newrelic_conn_id="newrelic_no_account").nrql("SELECT count(*) FROM Transaction")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda naive: PrometheusHook().query("app_requests_per_minute", naive), id="prometheus"),
        pytest.param(lambda naive: NagiosHook().worst_state(APP, "HTTP", naive, naive + WINDOW), id="nagios"),
        pytest.param(lambda naive: NewRelicHook.interval_clause(naive, naive + WINDOW), id="newrelic"),
        pytest.param(lambda naive: SplunkHook().count("index=app_logs", naive, naive + WINDOW), id="splunk"),
    ],
)
def test_naive_times_are_refused(sandbox: Any, call: Callable[[datetime], Any]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(datetime(2024, 5, 1, 12, 0))


def test_interval_clause_is_epoch_milliseconds() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert NewRelicHook.interval_clause(start, start + WINDOW) == "SINCE 1714564800000 UNTIL 1714565400000"
    with pytest.raises(ValueError, match="must be after"):
        NewRelicHook.interval_clause(start, start)


def test_nrql_value_reads_the_first_number(sandbox: Any, past: Interval) -> None:
    clause = NewRelicHook.interval_clause(*past)
    p95 = NewRelicHook().nrql_value(
        f"SELECT percentile(duration, 95) FROM Transaction WHERE appName = '{APP}' {clause}")
    average = READINGS["newrelic_duration_s"](past)
    assert p95 is not None and average is not None and p95 >= average
    assert NewRelicHook().nrql_value(
        f"SELECT average(duration) FROM Transaction WHERE appName = 'no-such-app' {clause}") is None


def test_an_http_error_keeps_its_status(sandbox: Any, past: Interval) -> None:
    set_fault(sandbox, "nagios", {"status": 404})
    with pytest.raises(HttpError) as raised:
        NagiosHook().worst_state(APP, "HTTP", *past)
    assert raised.value.status == 404

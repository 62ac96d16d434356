"""The service catalog: the shipped one loads, and each kind of bad input names what is wrong."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from prep_support.catalog import (
    CatalogError,
    HttpCheck,
    NagiosCheck,
    NewRelicCheck,
    PrometheusCheck,
    SplunkCheck,
    SqlCheck,
    TcpCheck,
    load_catalog,
    parse_json_path,
)

KNOWN = {"estate_http", "estate_tcp", "estate_db"}

GOOD = """\
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
        conn_id: estate_http
        url: /health
      - id: listener
        kind: tcp
        host: 127.0.0.1
        port: 9000
  - id: orders-api
    name: Orders API
    owner: orders@example.com
    team_channel: "#orders"
    tracker_project: ORD
    criticality: high
    depends_on: [payments-api]
    checks:
      - id: volume
        kind: sql
        conn_id: estate_db
        query_file: orders_last_day.sql
        min: 1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_catalog_loads_every_kind() -> None:
    catalog = load_catalog()
    kinds = {type(check) for _, check in catalog.checks_by_key.values()}
    assert kinds == {HttpCheck, TcpCheck, SqlCheck, PrometheusCheck, NagiosCheck, NewRelicCheck, SplunkCheck}
    assert len(catalog.services) >= 6
    assert "payments-api/health" in catalog.checks_by_key


def test_good_catalog_keys_checks_by_service(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD), KNOWN)
    assert sorted(catalog.checks_by_key) == ["orders-api/volume", "payments-api/health", "payments-api/listener"]
    service, check = catalog.checks_by_key["payments-api/health"]
    assert service.criticality == "critical"
    assert check.expected_status == [200] and check.timeout_s == 5.0


def test_cache_follows_the_file_content(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    first = load_catalog(path, KNOWN)
    again = load_catalog(path, KNOWN)
    assert again == first
    path.write_text(GOOD.replace("Payments API", "Payments API v2"))
    assert load_catalog(path, KNOWN).services[0].name == "Payments API v2"
    path.write_text(GOOD.replace("criticality: high", "criticality: urgent"))
    with pytest.raises(CatalogError, match="criticality"):
        load_catalog(path, KNOWN)


BAD = [
    pytest.param(
        GOOD.replace("    owner: orders@example.com\n", "    owner: [orders\n"),
        [r"line 2[0-9]", "YAML syntax error"],
        id="yaml-syntax",
    ),
    pytest.param(
        GOOD.replace("kind: tcp", "kind: ftp"),
        [r"line 14", r"services\[0\] \(id 'payments-api'\) > checks\[1\] \(id 'listener'\) > field 'kind'",
         "unknown kind 'ftp'; expected one of http, tcp, sql, prometheus, nagios, newrelic, splunk"],
        id="unknown-kind",
    ),
    pytest.param(
        GOOD.replace("        url: /health\n", ""),
        [r"services\[0\] \(id 'payments-api'\) > checks\[0\] \(id 'health'\) > field 'url'", "Field required"],
        id="missing-field",
    ),
    pytest.param(
        GOOD.replace("port: 9000", "port: nine-thousand"),
        [r"line 16", r"checks\[1\] \(id 'listener'\) > field 'port'", "valid integer"],
        id="wrong-type",
    ),
    pytest.param(
        GOOD.replace("id: orders-api", "id: payments-api").replace("depends_on: [payments-api]", ""),
        ["duplicate service id", "payments-api"],
        id="duplicate-service-id",
    ),
    pytest.param(
        GOOD.replace("id: listener", "id: health"),
        [r"services\[0\] \(id 'payments-api'\) > checks\[1\] \(id 'health'\) > field 'id'",
         "duplicate check id 'health'"],
        id="duplicate-check-id",
    ),
    pytest.param(
        GOOD.replace("conn_id: estate_db", "conn_id: estate_dbb"),
        [r"line 2[0-9]", r"services\[1\] \(id 'orders-api'\) > checks\[0\] \(id 'volume'\) > field 'conn_id'",
         "unknown Connection 'estate_dbb'", "AIRFLOW_CONN_ESTATE_DBB"],
        id="unknown-connection",
    ),
    pytest.param(
        GOOD.replace("depends_on: [payments-api]", "depends_on: [billing]"),
        ["depends on unknown service", "billing"],
        id="unknown-dependency",
    ),
    pytest.param(
        GOOD.replace("orders_last_day.sql", "no_such_query.sql"),
        [r"field 'query_file'", "no such query file"],
        id="missing-query-file",
    ),
    pytest.param(
        GOOD.replace("        query_file: orders_last_day.sql\n", "        query_file: ../../dags/health_sweep.py\n"),
        [r"field 'query_file'", "must stay under"],
        id="query-file-outside-sql-dir",
    ),
    pytest.param(
        GOOD.replace("url: /health", "url: /health\n        latency_warning_ms: 900\n        latency_critical_ms: 100"),
        ["latency_warning_ms must not exceed latency_critical_ms"],
        id="inconsistent-thresholds",
    ),
    pytest.param(
        GOOD.replace("        conn_id: estate_http\n", ""),
        ["relative url needs a conn_id"],
        id="relative-url-without-connection",
    ),
    pytest.param(
        GOOD.replace("url: /health", "url: /health\n        json_path_equals: {'status': ok}"),
        [r"field 'json_path_equals'", "must start with '\\$'"],
        id="bad-json-path",
    ),
    pytest.param("- just\n- a list\n", ["must be a mapping"], id="not-a-mapping"),
    pytest.param(
        GOOD.replace("kind: tcp\n        host: 127.0.0.1\n        port: 9000",
                     "kind: newrelic\n        nrql: SELECT count(*) FROM Transaction SINCE 1 hour ago\n        max: 5"),
        [r"field 'nrql'", "leave SINCE/UNTIL out"],
        id="newrelic-with-its-own-interval",
    ),
    pytest.param(
        GOOD.replace("kind: tcp\n        host: 127.0.0.1\n        port: 9000", "kind: prometheus\n        query: up"),
        [r"checks\[1\] \(id 'listener'\)", "give expected, or min and/or max"],
        id="source-without-bounds",
    ),
    pytest.param(GOOD.replace("kind: http", "kind: http\n        colour: blue"),
                 [r"field 'colour'", "Extra inputs are not permitted"], id="unknown-field"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_catalog_names_file_entry_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as raised:
        load_catalog(path, KNOWN)
    message = str(raised.value)
    assert message.startswith(str(path)), message
    for pattern in expected:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def test_connections_from_environment_count_as_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.replace("conn_id: estate_db", "conn_id: warehouse"))
    with pytest.raises(CatalogError, match="unknown Connection 'warehouse'"):
        load_catalog(path)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", '{"conn_type": "postgres", "host": "db"}')
    assert "orders-api/volume" in load_catalog(path).checks_by_key


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        pytest.param("$.status", ["status"], id="key"),
        pytest.param("$.items[2].state", ["items", 2, "state"], id="index"),
        pytest.param("$['x-ray'].ok", ["x-ray", "ok"], id="quoted"),
        pytest.param("$", [], id="root"),
    ],
)
def test_json_path_steps(path: str, steps: list) -> None:
    assert parse_json_path(path) == steps

"""Secrets stay out of error texts, stored definitions and the secret scan finds them (issue 12).

The config loaders refuse a probe URL with credentials; these are the run-time guards behind them:
what a client library says (it quotes the URL) and what the environment holds (AIRFLOW_CONN_*).
"""

from __future__ import annotations

import json

import pytest

from prep_support.redaction import connection_secrets, redact, redact_value
from tests.plugins.test_probes import http_check, probe

PASSWORD = "Hunter2-probe-pw"


@pytest.mark.parametrize(("text", "shown"), [
    pytest.param(f"InvalidUrlClientError: http://svc:{PASSWORD}@host:99999/",
                 "InvalidUrlClientError: http://svc:***@host:99999/",
                 id="user-and-password"),
    pytest.param("GET https://ghp_0123456789abcdef@github.example/x", "GET https://***@github.example/x",
                 id="token-as-user"),
    pytest.param("mail ops@example.com about http://host/p?a=b@c", "mail ops@example.com about http://host/p?a=b@c",
                 id="no-credentials"),
])
def test_redact_hides_url_credentials(text: str, shown: str) -> None:
    assert redact(text, secrets=[]) == shown


def test_redact_hides_every_secret_a_connection_holds(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://etl:Pg-pass-1234@db:5432/dw?api_token=tok-5678-xyz")
    monkeypatch.setenv("AIRFLOW_CONN_TRACKER", json.dumps(
        {"conn_type": "http", "login": "bot", "password": "Json-pass-999", "extra": {"api_key": "key-abc-123"}}))
    found = connection_secrets()
    assert {"Pg-pass-1234", "tok-5678-xyz", "Json-pass-999", "key-abc-123"} <= set(found)
    assert "bot" not in found
    text = "folder /srv/postgresql:/etl:Pg-pass-1234@db:5432/dw/inbound; key-abc-123 refused; Json-pass-999"
    assert redact(text) == "folder /srv/postgresql:/etl:***@db:5432/dw/inbound; *** refused; ***"
    assert redact_value({"url": "http://a:Json-pass-999@h/", "n": 1, "xs": ["key-abc-123"]}) == {
        "url": "http://a:***@h/", "n": 1, "xs": ["***"]}


def test_a_probe_failure_does_not_quote_the_urls_password() -> None:
    result = probe(http_check(), f"http://svc:{PASSWORD}@127.0.0.1:99999/health")
    assert result.status == "fail"
    assert "InvalidUrlClientError" in result.detail and "svc:***@" in result.detail
    assert PASSWORD not in result.detail


def test_the_secret_scan_finds_a_seeded_secret(tmp_path) -> None:
    from tests.secret_scan import leaks, seed

    secret = seed("Seeded-scan-secret-42")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "task.log").write_text(f"connecting with {secret}\n")
    found = leaks([("Captured stdout call", "nothing here")], tmp_path, 0, tmp_path / "none.db", None)
    assert found == ["Seed… in log file logs/task.log"]
    assert leaks([("Captured stdout call", f"x {secret} y")], tmp_path / "logs" / "none", 0,
                 tmp_path / "none.db", None) == ["Seed… in Captured stdout call"]


def test_a_stored_check_definition_carries_no_url_password() -> None:
    """The loaders refuse credentials in a probe URL; a definition stored anyway (a catalog built in code)
    is redacted on its way into the support database."""
    import sqlalchemy as sa

    from prep_support.catalog import load_catalog
    from prep_support.results import sync_catalog
    from prep_support.schema import Base, CheckRow

    catalog = load_catalog()
    service = next(s for s in catalog.services if any(c.kind == "http" for c in s.checks))
    checks = [c.model_copy(update={"url": f"https://probe:{PASSWORD}@status.example/health"}) if c.kind == "http"
              else c for c in service.checks]
    catalog = catalog.model_copy(update={"services": [service.model_copy(update={"checks": checks})]})
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    sync_catalog(engine, catalog)
    with engine.connect() as connection:
        stored = [row.definition for row in connection.execute(sa.select(CheckRow.__table__))]
    assert any(d.get("url") == "https://probe:***@status.example/health" for d in stored)
    assert PASSWORD not in json.dumps(stored)

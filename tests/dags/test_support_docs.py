"""support_docs with dag.test() against the sandbox's Confluence, SharePoint (Graph) and Jira; and the
CATALOG asset health_sweep emits only when the catalog's content changed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert

from prep_support.catalog import load_catalog
from prep_support.results import sync_catalog, upsert
from prep_support.schema import IncidentRow, ServiceStateRow
from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert('runbook')</script>"


@pytest.fixture
def catalog_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the catalog the DAGs parsed next read (PREP_SUPPORT_CATALOG), so the test may edit it."""
    path = tmp_path / "services.yaml"
    shutil.copy(ROOT / "include" / "config" / "services.yaml", path)
    monkeypatch.setenv("PREP_SUPPORT_CATALOG", str(path))
    return path


def parse(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


@pytest.fixture
def clean(sandbox, support_engine) -> str:
    base = sandbox.base_url
    for path in ("/jira/_sandbox/issues", "/confluence/_sandbox/pages", "/graph/_sandbox/files"):
        call(base, "DELETE", path)
    return base


def pages(base: str) -> dict[str, dict]:
    return {page["title"]: page for page in call(base, "GET", "/confluence/_sandbox/pages")["pages"]}


def files(base: str) -> dict[str, dict]:
    return {f["path"].rsplit("/", 1)[-1]: f for f in call(base, "GET", "/graph/_sandbox/files")["files"]}


def test_docs_are_published_once_and_updated_in_place(airflow_db, support_engine, clean, catalog_copy,
                                                      jira_cloud) -> None:
    """On Jira Cloud, which retired the search the how-to pages used to be read with (410 Gone)."""
    from hooks.sharepoint import SharePointHook

    base = clean
    call(base, "POST", "/jira/_sandbox/seed/how-to")
    sync_catalog(support_engine, load_catalog(catalog_copy))
    opened = datetime(2026, 2, 20, 9, 30, tzinfo=UTC)
    with support_engine.begin() as connection:  # a past incident: runs of other tests are months later
        connection.execute(insert(IncidentRow).values({
        "dedup_key": "payments-api/health/availability", "service_id": "payments-api",
        "check_id": "payments-api/health", "kind": "availability", "status": "resolved", "state": "ok",
        "priority": "High", "tracker": "jira", "ticket_key": "PAY-42", "ticket_url": "http://jira/browse/PAY-42",
        "evidence": "", "updates": 0, "opened_run_id": "r", "opened_at": opened, "updated_at": opened,
        "resolved_at": opened}))
    # Orders API's health as monitoring last left it (other tests share this database: set it here).
    upsert(support_engine, ServiceStateRow.__table__, [{"service_id": "orders-api", "state": "degraded",
                                                          "since": opened, "updated_at": opened}], ["service_id"])
    when = datetime(2026, 3, 2, 6, tzinfo=UTC)

    assert parse("support_docs").test(logical_date=when).state == "success"

    published = pages(base)
    service_titles = {f"Runbook: {s.name}" for s in load_catalog(catalog_copy).services}
    assert set(published) == service_titles | {"How do I? Support knowledge base", "Prep Support runbooks"}
    payments = published["Runbook: Payments API"]
    assert payments["ancestors"] == ["Prep Support runbooks"] and payments["version"] == 1
    assert "kubectl rollout restart deployment/payments-api" in payments["body"]
    assert "Fail over to the DR region" in payments["body"]
    assert '<a href="http://jira/browse/PAY-42">PAY-42</a>' in payments["body"]  # recent incident
    assert "Depends on: Runbook: Auth Gateway." in payments["body"]
    assert "Needed by: Runbook: Payments API, Runbook: Orders API, Runbook: Customer Portal." in (
        published["Runbook: Auth Gateway"]["body"])
    assert "degraded since 2026-02-20 09:30 UTC" in published["Runbook: Orders API"]["body"]
    kb = published["How do I? Support knowledge base"]["body"]
    assert "How do I re-run the nightly settlement?" in kb and "Clear the failed task of the settlement DAG" in kb
    assert "Orders stay in &#39;pending&#39; for more than an hour" in kb  # no comment: the description answers
    stored = files(base)
    assert set(stored) == {"runbook-payments-api.html", "runbook-orders-api.html", "runbook-customer-portal.html",
                           "runbook-reporting.html", "runbook-inventory-api.html", "runbook-auth-gateway.html",
                           "how-do-i-support-knowledge-base.html"}

    # The same facts again: no new Confluence version, no new SharePoint version.
    assert parse("support_docs").test(logical_date=datetime(2026, 3, 9, 6, tzinfo=UTC)).state == "success"
    assert {t: p["version"] for t, p in pages(base).items()} == {t: p["version"] for t, p in published.items()}
    assert {n: f["versions"] for n, f in files(base).items()} == {n: f["versions"] for n, f in stored.items()}

    # A changed runbook in the catalog: the same page, one new version; markup in it shows as text.
    data = yaml.safe_load(catalog_copy.read_text())
    data["services"][0]["runbook"]["restart"] = f"Call the on-call first {SCRIPT}"
    catalog_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    assert parse("support_docs").test(logical_date=datetime(2026, 3, 16, 6, tzinfo=UTC)).state == "success"
    after = pages(base)
    assert after["Runbook: Payments API"]["id"] == payments["id"] and after["Runbook: Payments API"]["version"] == 2
    assert after["Runbook: Orders API"]["version"] == 1
    assert len(after) == len(published)
    body = after["Runbook: Payments API"]["body"]
    assert SCRIPT not in body and "Call the on-call first &lt;script&gt;alert(&#39;runbook&#39;)&lt;/script&gt;" in body
    assert files(base)["runbook-payments-api.html"]["versions"] == 2
    html = SharePointHook(sharepoint_conn_id="sharepoint_default").download("Support docs/runbook-payments-api.html")
    assert b"<script>" not in html and b"&lt;script&gt;" in html


def test_health_sweep_emits_a_catalog_event_only_when_the_catalog_changed(airflow_db, support_engine, sandbox,
                                                                           catalog_copy) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def catalog_events() -> list[dict]:
        with create_session() as session:
            return [event.extra for event in session.scalars(
                select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.name == "prep-support://catalog").order_by(AssetEvent.id))]

    def sweep(day: int) -> None:
        # Only register_catalog runs; the probes and what follows are marked successful.
        dag = parse("health_sweep")
        run = dag.test(logical_date=datetime(2026, 4, day, tzinfo=UTC),
                       mark_success_pattern="probe_checks|evaluate_health|reconcile_incidents|send_notifications")
        assert run.state == "success"

    from prep_support.catalog import catalog_digest

    sweep(1)  # emits unless the last CATALOG event already carries this content's hash
    first = catalog_events()
    assert first[-1]["sha256"] == catalog_digest(catalog_copy)
    sweep(2)  # unchanged: no event
    assert catalog_events() == first
    data = yaml.safe_load(catalog_copy.read_text())
    data["services"][1]["runbook"]["notes"] = "Changed for the test"
    catalog_copy.write_text(yaml.safe_dump(data, sort_keys=False))
    sweep(3)  # changed: one event with the new hash
    sweep(4)
    assert catalog_events()[len(first):] == [{"sha256": catalog_digest(catalog_copy)}]


def test_a_catalog_change_run_publishes_as_of_its_start(airflow_db, support_engine, clean, catalog_copy) -> None:
    """An asset-triggered run (the catalog changed) has no data interval in its context: it failed with
    KeyError 'data_interval_end' on every try in a fresh `make run`."""
    from types import SimpleNamespace

    task = parse("support_docs").get_task("publish_docs")
    result = task.execute({"dag_run": SimpleNamespace(run_after=datetime(2026, 3, 9, 6, tzinfo=UTC))})
    assert result["pages"] and {page["title"] for page in result["pages"]} <= set(pages(clean))

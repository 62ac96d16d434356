"""The outage core: form rules naming their fields, ids, affected services, texts escaped per channel,
the status page's statuses, the outages migration, health_sweep's critical-incident asset event, and the
incidents' outages it asks to resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine

from prep_support.catalog import load_catalog
from prep_support.messages import slack_text
from prep_support.outages import (
    OutageRequestError,
    affected_services,
    component_statuses,
    derive_outage_id,
    incident_outage_id,
    message_key,
    request_from_form,
    requests_from_incidents,
    update_event,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def form(**values):
    return {"action": "announce", "service": "orders-api", "kind": "unplanned", "severity": "major",
            "channels": ["slack"], **values}


@pytest.mark.parametrize(("values", "named"), [
    pytest.param({"kind": "planned"}, ["start: a planned outage needs its start",
                                       "expected_end: a planned outage needs its expected end"], id="planned-no-times"),
    pytest.param({"start": "2026-12-02T10:00Z", "expected_end": "2026-12-02T09:00Z"},
                 ["expected_end: 2026-12-02T09:00:00+00:00 is not after start 2026-12-02T10:00:00+00:00"],
                 id="end-before-start"),
    pytest.param({"service": None}, ["service: choose the service"], id="no-service"),
    pytest.param({"action": "update"}, ["update: an update needs its text"], id="update-without-text"),
    pytest.param({"start": "next tuesday"}, ["start: 'next tuesday' is not a date-time"], id="bad-time"),
    pytest.param({"channels": []}, ["channels: choose at least one channel"], id="no-channel"),
])
def test_cross_field_rules_name_every_bad_field(catalog, values, named) -> None:
    with pytest.raises(OutageRequestError) as raised:
        request_from_form(form(**values), catalog, now=NOW)
    for text in named:
        assert text in str(raised.value)


def test_a_good_form_gives_a_deterministic_outage_id_and_catalog_impact(catalog) -> None:
    request = request_from_form(form(start="2026-12-01T22:00", expected_end="2026-12-02T01:00+01:00"), catalog,
                                now=NOW)
    assert request.outage_id == "orders-api-20261201-2200" == derive_outage_id("orders-api", request.starts_at)
    assert request.expected_end == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # zone honoured, UTC if none
    assert request.impact == ("Orders API is unavailable or degraded. Services that depend on it may be affected: "
                              "Customer Portal.")
    # An update without an id is about the service's open outage (found by the task), not a new id.
    assert request_from_form(form(action="update", update="Fix deployed"), catalog, now=NOW).outage_id == ""


def test_incidents_become_unplanned_outages_keyed_by_incident(catalog) -> None:
    incident = {"dedup_key": "auth-gateway/health/availability", "service_id": "auth-gateway",
                "opened_at": "2026-12-01T11:58:30+00:00", "ticket_key": "IAM-1"}
    (request,) = requests_from_incidents([incident, incident], catalog)
    assert request.outage_id == "auth-gateway-health-availability-20261201-1158"
    assert request.outage_id == incident_outage_id(incident["dedup_key"], NOW - timedelta(seconds=90))
    assert (request.kind, request.severity, request.source, request.incident["ticket_key"]) == (
        "unplanned", "critical", "incident", "IAM-1")
    with pytest.raises(OutageRequestError, match="incident 'x/y/z': service 'gone'"):
        requests_from_incidents([{"dedup_key": "x/y/z", "service_id": "gone"}], catalog)


def test_affected_services_follow_dependencies_transitively(catalog) -> None:
    assert affected_services(catalog, "auth-gateway") == ["auth-gateway", "payments-api", "orders-api",
                                                          "customer-portal"]
    assert affected_services(catalog, "reporting") == ["reporting"]
    assert component_statuses(catalog, "orders-api", "critical") == {"orders-api": "major_outage",
                                                                     "customer-portal": "degraded_performance"}


def test_keys_and_slack_escaping() -> None:
    assert message_key("x-1", "announced", "slack") == "outage:x-1:announced:slack"
    assert update_event(" Fixed ") == update_event("Fixed") != update_event("Fixed!")
    assert slack_text("<!channel> & <https://e.example|x>") == "&lt;!channel&gt; &amp; &lt;https://e.example|x&gt;"


def outage_row(**values):
    row = {"id": "orders-api-20261201-1200", "service_id": "orders-api", "kind": "unplanned", "severity": "major",
           "status": "active", "impact": "<b>Orders</b> <!here>", "workaround": "*call* us", "channels": ["slack"],
           "affected": ["orders-api", "customer-portal"], "starts_at": NOW, "expected_end": None, "ended_at": None,
           "last_update": "", "source": "form", "ticket_key": "ORD-1", "ticket_url": "https://jira.example/ORD-1",
           **values}
    return SimpleNamespace(_mapping=row, **row)


def test_each_channel_gets_its_own_escaping(catalog) -> None:
    from operators.outage_comms import outage_card, outage_texts
    from prep_support.outages import OutageRequest

    request = OutageRequest.from_json(request_from_form(form(), catalog, now=NOW).to_json())
    texts = outage_texts(outage_row(ended_at=NOW + timedelta(minutes=125), status="resolved"), "resolved",
                         request, catalog)
    assert texts["slack"].splitlines() == [
        ":white_check_mark: *Orders API* outage resolved after 2 h 05 min",
        "Impact: &lt;b&gt;Orders&lt;/b&gt; &lt;!here&gt;",
        "Affected services: Orders API, Customer Portal",
        "Duration: 2 h 05 min (2026-12-01 12:00 UTC to 2026-12-01 14:05 UTC)",
        "Ticket: ORD-1 <https://jira.example/ORD-1>",
        "Outage id: orders-api-20261201-1200",
    ]
    assert "Impact: <b>Orders</b> <!here>" in texts["plain"]
    assert "&lt;b&gt;Orders&lt;/b&gt;" in texts["email"] and "<b>Orders" not in texts["email"]
    card = outage_card(texts["plain"], "resolved")
    assert all(block["type"] in ("Container", "RichTextBlock") for block in card["body"])
    assert {"type": "TextRun", "text": "Impact: <b>Orders</b> <!here>"} in [
        inline for block in card["body"] for inline in block.get("inlines", [])]


def test_the_status_page_shows_the_worst_of_outages_and_health(catalog) -> None:
    from prep_support.status_page import page_context

    current = [outage_row(channels=["status_page"]),
               outage_row(id="m", service_id="reporting", status="in_progress", kind="planned", affected=["reporting"],
                          channels=["status_page"]),
               outage_row(id="hidden", service_id="inventory-api", affected=["inventory-api"], channels=["slack"])]
    context = page_context([(s.id, s.name) for s in catalog.services], {"current": current, "upcoming": []},
                           {"auth-gateway": "degraded", "customer-portal": "down"}, {}, NOW)
    statuses = {c.id: c.status for c in context["components"]}
    assert statuses == {"payments-api": "operational", "orders-api": "partial_outage",
                        "customer-portal": "major_outage", "reporting": "under_maintenance",
                        "inventory-api": "operational", "auth-gateway": "degraded_performance"}
    assert [o.id for o in context["current"]] == ["orders-api-20261201-1200", "m"]
    assert context["overall"] == "major_outage"


def test_the_migration_builds_the_outages_table_the_model_describes(tmp_path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from prep_support.migrate import downgrade, upgrade
    from prep_support.schema import Base

    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")

    def differences() -> list:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                     Base.metadata)
        return [d for d in found if "outages" in repr(d)]

    upgrade(engine)
    assert differences() == []
    downgrade(engine, "0004")
    assert "outages" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert differences() == []
    engine.dispose()


def fresh_support_db(tmp_path, catalog):
    """A support database of its own: the shared one holds incidents and outages of other tests."""
    from prep_support.migrate import upgrade
    from prep_support.results import sync_catalog

    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    sync_catalog(engine, catalog)
    return engine


def test_health_sweep_emits_critical_incidents_only_when_it_opened_one(tmp_path, catalog) -> None:
    """On a database of its own: the shared support database may hold incidents other tests opened."""
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from airflow.sdk.execution_time.task_runner import _serialize_outlet_events
    from support_assets import CRITICAL_INCIDENTS, CRITICAL_INCIDENTS_OPENED

    from operators.reconcile_incidents import ReconcileIncidentsOperator
    from prep_support.schema import IncidentRow

    support_engine = fresh_support_db(tmp_path, catalog)
    base = {"status": "open", "tracker": "jira", "evidence": "HTTP 503", "updates": 0, "opened_at": NOW,
            "updated_at": NOW, "opened_run_id": "scheduled__sweep-1", "ticket_key": None}
    with support_engine.begin() as connection:
        connection.execute(IncidentRow.__table__.insert(), [
            {**base, "dedup_key": "auth-gateway/health/availability", "service_id": "auth-gateway",
             "check_id": "auth-gateway/health", "kind": "availability", "state": "down", "priority": "Highest",
             "ticket_key": "IAM-7"},
            {**base, "dedup_key": "orders-api/health/availability", "service_id": "orders-api",  # not critical
             "check_id": "orders-api/health", "kind": "availability", "state": "down", "priority": "High"},
            {**base, "dedup_key": "payments-api/health/performance", "service_id": "payments-api",  # degraded only
             "check_id": "payments-api/health", "kind": "performance", "state": "degraded", "priority": "Highest"},
        ])
    operator = ReconcileIncidentsOperator(task_id="reconcile_incidents", outlets=[CRITICAL_INCIDENTS_OPENED])

    events = OutletEventAccessors()
    operator.emit_critical_incidents({"run_id": "scheduled__sweep-1", "outlet_events": events}, support_engine)
    (emitted,) = list(_serialize_outlet_events(events))
    assert emitted["dest_asset_key"] == {"name": CRITICAL_INCIDENTS.name, "uri": CRITICAL_INCIDENTS.uri}
    assert [(i["dedup_key"], i["ticket_key"]) for i in emitted["extra"]["incidents"]] == [
        ("auth-gateway/health/availability", "IAM-7")]
    assert emitted["extra"]["resolved"] == []

    quiet = OutletEventAccessors()
    operator.emit_critical_incidents({"run_id": "scheduled__sweep-2", "outlet_events": quiet}, support_engine)
    assert list(_serialize_outlet_events(quiet)) == []


def add_incident(engine, dedup_key: str, opened_at: datetime, resolved_at: datetime | None = None) -> None:
    from prep_support.schema import IncidentRow

    service_id, check, kind = dedup_key.split("/")
    with engine.begin() as connection:
        connection.execute(IncidentRow.__table__.insert().values(
            dedup_key=dedup_key, service_id=service_id, check_id=f"{service_id}/{check}", kind=kind,
            status="resolved" if resolved_at else "open", state="ok" if resolved_at else "down", priority="Highest",
            tracker="jira", evidence="HTTP 503", updates=0, opened_run_id="scheduled__sweep", opened_at=opened_at,
            updated_at=resolved_at or opened_at, resolved_at=resolved_at))


def add_incident_outage(engine, dedup_key: str, opened_at: datetime, status: str = "active") -> str:
    from prep_support.schema import OutageRow

    outage_id = incident_outage_id(dedup_key, opened_at)
    service_id = dedup_key.split("/")[0]
    with engine.begin() as connection:
        connection.execute(OutageRow.__table__.insert().values(
            id=outage_id, service_id=service_id, kind="unplanned", severity="critical", status=status,
            impact="down", workaround="", channels=["slack"], affected=[service_id], starts_at=opened_at,
            expected_end=None, ended_at=None, last_update="", source="incident", incident_key=dedup_key,
            created_run_id="asset_triggered__x", created_at=opened_at, updated_at=opened_at))
    return outage_id


def test_an_incidents_outage_is_to_resolve_once_its_own_incident_is_resolved(tmp_path, catalog) -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors
    from airflow.sdk.execution_time.task_runner import _serialize_outlet_events
    from support_assets import CRITICAL_INCIDENTS_OPENED

    from operators.reconcile_incidents import ReconcileIncidentsOperator
    from prep_support import outage_store

    engine = fresh_support_db(tmp_path, catalog)
    auth, payments, orders, portal = (f"{s}/health/availability" for s in (
        "auth-gateway", "payments-api", "orders-api", "customer-portal"))
    # Auth Gateway: down for 23 minutes, then down again an hour later (the same key, another outage).
    add_incident(engine, auth, NOW, resolved_at=NOW + timedelta(minutes=23))
    recovered = add_incident_outage(engine, auth, NOW)
    add_incident(engine, auth, NOW + timedelta(hours=1))
    down_again = add_incident_outage(engine, auth, NOW + timedelta(hours=1))
    # Payments: still down. Orders: recovered, but an analyst resolved its outage already.
    add_incident(engine, payments, NOW)
    add_incident_outage(engine, payments, NOW)
    add_incident(engine, orders, NOW, resolved_at=NOW + timedelta(minutes=5))
    add_incident_outage(engine, orders, NOW, status="resolved")
    # Customer Portal: recovered and down again within the same minute: one outage id, and it is not over.
    add_incident(engine, portal, NOW, resolved_at=NOW + timedelta(seconds=20))
    add_incident(engine, portal, NOW + timedelta(seconds=40))
    add_incident_outage(engine, portal, NOW)

    assert outage_store.incident_outages_to_resolve(engine) == [{
        "outage_id": recovered, "incident_id": 1, "dedup_key": auth, "service_id": "auth-gateway",
        "check_id": "auth-gateway/health", "opened_at": NOW.isoformat(),
        "resolved_at": (NOW + timedelta(minutes=23)).isoformat()}]
    assert down_again != recovered

    # health_sweep asks outage_comms to resolve it in a run that opened nothing, and every run until it is.
    operator = ReconcileIncidentsOperator(task_id="reconcile_incidents", outlets=[CRITICAL_INCIDENTS_OPENED])
    for run in ("scheduled__sweep-3", "scheduled__sweep-4"):
        events = OutletEventAccessors()
        operator.emit_critical_incidents({"run_id": run, "outlet_events": events}, engine)
        (emitted,) = list(_serialize_outlet_events(events))
        assert emitted["extra"]["incidents"] == []
        assert [r["outage_id"] for r in emitted["extra"]["resolved"]] == [recovered]
    outage_store.set_values(engine, recovered, NOW + timedelta(hours=2), status="resolved")
    quiet = OutletEventAccessors()
    operator.emit_critical_incidents({"run_id": "scheduled__sweep-5", "outlet_events": quiet}, engine)
    assert list(_serialize_outlet_events(quiet)) == []
    engine.dispose()

"""StatuspageHook against the sandbox's Statuspage REST API v1, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from hooks.http_client import HttpError
from hooks.statuspage import StatuspageHook
from sandbox.statuspage import PAGE_ID, seeded_services

TIMEOUT = 10
KEY = "outage/payments-api/2024-05-01T10:00"


@pytest.fixture(autouse=True)
def _clean_statuspage(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/statuspage/_sandbox/state", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


@pytest.fixture
def hook() -> StatuspageHook:
    return StatuspageHook()


def state(sandbox) -> dict[str, Any]:
    return requests.get(f"{sandbox.base_url}/statuspage/_sandbox/state", timeout=TIMEOUT).json()


def journal(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/sandbox/requests/statuspage", timeout=TIMEOUT).json()["requests"]


def component_status(sandbox, name: str) -> str:
    return next(c["status"] for c in state(sandbox)["components"] if c["name"] == name)


def open_outage(hook: StatuspageHook, key: str = KEY, **overrides: Any) -> dict[str, Any]:
    payments = hook.component_ids(["payments-api"])["payments-api"]
    arguments = {"key": key, "name": "Payments are failing", "status": "investigating",
                 "body": "We are investigating failed card payments.", "impact": "major",
                 "component_statuses": {payments: "partial_outage"}} | overrides
    return hook.create_incident(**arguments)


def test_components_are_the_catalog_services(hook: StatuspageHook) -> None:
    components = hook.components()
    assert [c["name"] for c in components] == [service_id for service_id, _name in seeded_services()]
    assert {c["status"] for c in components} == {"operational"}
    assert {c["page_id"] for c in components} == {PAGE_ID}


def test_components_follow_pagination_to_the_end(hook: StatuspageHook, sandbox) -> None:
    start = len(journal(sandbox))
    names = [c["name"] for c in hook.components(per_page=4)]

    assert len(names) == len(seeded_services()) == 6
    pages = [parse_qs(call["query"])["page"][0] for call in journal(sandbox)[start:]]
    assert pages == ["1", "2"]  # the second page is short: the end


def test_component_ids_name_unknown_components(hook: StatuspageHook) -> None:
    ids = hook.component_ids(["orders-api", "payments-api"])
    assert list(ids) == ["orders-api", "payments-api"] and all(len(i) == 12 for i in ids.values())
    with pytest.raises(ValueError, match=r"has no component named 'billing', 'payroll'; it has auth-gateway"):
        hook.component_ids(["payments-api", "billing", "payroll"])


def test_set_component_status(hook: StatuspageHook, sandbox) -> None:
    orders = hook.component_ids(["orders-api"])["orders-api"]
    assert hook.set_component_status(orders, "degraded_performance")["status"] == "degraded_performance"
    assert component_status(sandbox, "orders-api") == "degraded_performance"
    with pytest.raises(ValueError, match="component status 'broken' is not one of operational"):
        hook.set_component_status(orders, "broken")


def test_invalid_status_gets_statuspage_422(hook: StatuspageHook) -> None:
    orders = hook.component_ids(["orders-api"])["orders-api"]
    with pytest.raises(HttpError) as raised:
        hook._call("PATCH", f"components/{orders}", json={"component": {"status": "broken"}})
    assert raised.value.status == 422 and "is not included in the list" in str(raised.value)


def test_create_is_idempotent_by_key(hook: StatuspageHook, sandbox) -> None:
    created = open_outage(hook)
    again = open_outage(hook, body="a retried task says it differently")

    assert again["id"] == created["id"]
    [stored] = state(sandbox)["incidents"]
    assert stored["metadata"] == {"prep_support": {"key": KEY}}
    assert (stored["status"], stored["impact"]) == ("investigating", "major")
    assert [u["body"] for u in stored["incident_updates"]] == ["We are investigating failed card payments."]
    assert component_status(sandbox, "payments-api") == "partial_outage"
    assert created["shortlink"].startswith("https://stspg.io/")
    assert hook.find_incident(KEY)["id"] == created["id"]
    assert hook.find_incident("outage/never/opened") is None


def test_update_history_and_resolution(hook: StatuspageHook, sandbox) -> None:
    payments = hook.component_ids(["payments-api"])["payments-api"]
    created = open_outage(hook)
    hook.update_incident(created["id"], status="identified", body="A certificate expired.")
    resolved = hook.update_incident(created["id"], status="resolved", body="Payments work again.",
                                    component_statuses={payments: "operational"})

    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    assert [(u["status"], u["body"]) for u in resolved["incident_updates"]] == [  # newest first
        ("resolved", "Payments work again."),
        ("identified", "A certificate expired."),
        ("investigating", "We are investigating failed card payments."),
    ]
    assert resolved["incident_updates"][0]["affected_components"] == [
        {"code": payments, "name": "payments-api", "old_status": "partial_outage", "new_status": "operational"}]
    assert component_status(sandbox, "payments-api") == "operational"
    # A resolved incident is no longer in the open lists; its name finds it on the newest page of matches.
    assert hook.find_incident(KEY) is None
    assert hook.find_incident(KEY, "Payments are failing")["id"] == created["id"]


def test_scheduled_maintenance(hook: StatuspageHook, sandbox) -> None:
    inventory = hook.component_ids(["inventory-api"])["inventory-api"]
    starts = datetime(2030, 1, 5, 22, 0, tzinfo=UTC)
    maintenance = hook.create_incident(
        key="maintenance/inventory-api/2030-01-05", name="Inventory database upgrade", status="scheduled",
        body="Inventory will be read-only.", impact="maintenance",
        component_statuses={inventory: "under_maintenance"},
        scheduled_for=starts, scheduled_until=starts + timedelta(hours=2), remind_minutes=60,
    )

    assert maintenance["scheduled_for"] == "2030-01-05T22:00:00+00:00"
    assert (maintenance["scheduled_remind_prior"], maintenance["scheduled_auto_completed"]) == (True, True)
    assert hook.find_incident("maintenance/inventory-api/2030-01-05")["id"] == maintenance["id"]
    done = hook.update_incident(maintenance["id"], status="completed", body="Done.",
                                component_statuses={inventory: "operational"})
    assert done["resolved_at"] and done["status"] == "completed"
    with pytest.raises(ValueError, match="needs scheduled_for and scheduled_until"):
        hook.create_incident(key="m/2", name="x", status="scheduled", body="", impact="maintenance",
                             component_statuses={})
    with pytest.raises(ValueError, match="must be timezone-aware"):
        hook.create_incident(key="m/3", name="x", status="scheduled", body="", impact="maintenance",
                             component_statuses={}, scheduled_for=datetime(2030, 1, 1),
                             scheduled_until=datetime(2030, 1, 2))


def test_find_incident_never_pages_the_history(hook: StatuspageHook, sandbox, monkeypatch) -> None:
    monkeypatch.setattr("hooks.statuspage.PER_PAGE", 2)
    oldest = open_outage(hook, key="old/one", name="Orders were slow")
    hook.update_incident(oldest["id"], status="resolved", body="fixed")
    for index in range(6):
        open_outage(hook, key=f"newer/{index}")
        hook.update_incident(hook.find_incident(f"newer/{index}")["id"], status="resolved", body="fixed")
    start = len(journal(sandbox))

    assert hook.find_incident("old/one", "Orders were slow")["id"] == oldest["id"]
    assert hook.find_incident("old/one") is None  # without a name: the open lists only

    searched = [parse_qs(call["query"]) for call in journal(sandbox)[start:] if call["path"].endswith("/incidents")]
    # One request, sized with the list's own parameter (it ignores per_page), newest matches first.
    assert searched == [{"q": ["Orders were slow"], "page": ["1"], "limit": ["2"]}]
    assert len(journal(sandbox)[start:]) == 7  # 3 open lists (empty) + the search, then the 3 lists again


def test_the_incident_list_is_sized_by_limit(sandbox) -> None:
    base = f"{sandbox.base_url}/statuspage/v1/pages/{PAGE_ID}/incidents"
    hook = StatuspageHook()
    for index in range(3):
        open_outage(hook, key=f"k/{index}")
    headers = {"Authorization": f"OAuth {hook.conn_params.password}"}
    assert len(requests.get(base, params={"limit": 2}, headers=headers, timeout=TIMEOUT).json()) == 2
    assert len(requests.get(base, params={"per_page": 2}, headers=headers, timeout=TIMEOUT).json()) == 3


@pytest.mark.parametrize("status", [429, 420])  # Statuspage still answers its rate limit with 420 too
def test_rate_limit_with_retry_after_is_waited_out(hook: StatuspageHook, sandbox, status: int) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/statuspage",
                 json={"status": status, "retry_after_s": 1, "times": 1}, timeout=TIMEOUT).raise_for_status()
    began = time.monotonic()

    assert len(hook.components()) == 6

    assert time.monotonic() - began >= 1.0
    assert [call["status"] for call in journal(sandbox)][-2:] == [status, 200]


def test_failed_create_is_looked_up_not_repeated(hook: StatuspageHook, sandbox) -> None:
    # Calls: components, then unresolved, scheduled, active_maintenance, the name search (nothing), the POST: 502.
    requests.put(f"{sandbox.base_url}/sandbox/faults/statuspage", json={"status": 502, "every": 6, "times": 1},
                 timeout=TIMEOUT).raise_for_status()
    start = len(journal(sandbox))

    with pytest.raises(HttpError) as raised:
        open_outage(hook)

    assert raised.value.status == 502
    calls = [(call["method"], call["path"].rsplit("/", 1)[-1]) for call in journal(sandbox)[start:]]
    assert calls[5:] == [("POST", "incidents"), ("GET", "unresolved"), ("GET", "scheduled"),
                         ("GET", "active_maintenance"), ("GET", "incidents")]  # looked up after, never re-posted
    assert state(sandbox)["incidents"] == []  # the fault answered before the sandbox processed it


def test_bad_api_key_names_the_connection_not_the_key(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_STATUSPAGE_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_WRONG", json.dumps({**conn, "password": "not-the-key"}))
    hook = StatuspageHook(statuspage_conn_id="statuspage_wrong")

    with pytest.raises(HttpError) as raised:
        hook.components()

    assert raised.value.status == 401
    assert "Connection 'statuspage_wrong'" in str(raised.value) and "Could not authenticate" in str(raised.value)
    assert "not-the-key" not in str(raised.value)
    assert hook.test_connection()[0] is False


def test_unknown_page_and_missing_page_id(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_STATUSPAGE_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_OTHER", json.dumps({**conn, "extra": {**conn["extra"],
                                                                                     "page_id": "nosuchpage00"}}))
    with pytest.raises(HttpError) as raised:
        StatuspageHook(statuspage_conn_id="statuspage_other").components()
    assert raised.value.status == 404

    monkeypatch.setenv("AIRFLOW_CONN_STATUSPAGE_NOPAGE", json.dumps(
        {"conn_type": "http", "host": "api.statuspage.io", "password": "k"}))
    with pytest.raises(ValueError, match="'statuspage_nopage' needs extra 'page_id'"):
        StatuspageHook(statuspage_conn_id="statuspage_nopage").components()

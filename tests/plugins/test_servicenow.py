"""ServiceNowHook against the sandbox's Table and Attachment APIs, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from hooks.http_client import HttpError
from hooks.servicenow import ServiceNowHook
from hooks.trackers import ServiceNowTracker, Ticket
from sandbox.servicenow import ADMIN_PASSWORD, SANDBOX_PASSWORD

TIMEOUT = 10
KEY = "payments-api/health/down"


@pytest.fixture(autouse=True)
def _clean_servicenow(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/servicenow/_sandbox/incidents", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


@pytest.fixture
def hook() -> ServiceNowHook:
    return ServiceNowHook()


def incidents(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/servicenow/_sandbox/incidents", timeout=TIMEOUT).json()["incidents"]


def journal(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/sandbox/requests/servicenow", timeout=TIMEOUT).json()["requests"]


def inject(sandbox, **plan: Any) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/servicenow", json=plan, timeout=TIMEOUT).raise_for_status()


def new_incident(hook: ServiceNowHook, key: str = KEY, **fields: Any) -> dict[str, Any]:
    return hook.create_incident({"short_description": f"{key} is failing", "correlation_id": key, **fields})


def test_connection_from_the_environment(sandbox) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_SERVICENOW_DEFAULT"])
    assert conn == {
        "conn_type": "http", "host": "127.0.0.1", "port": sandbox.http_port, "schema": "http",
        "login": "prep-support", "password": SANDBOX_PASSWORD, "extra": {"base_path": "/servicenow"},
    }
    ok, message = ServiceNowHook().test_connection()
    assert ok, message
    assert message == f"Read incidents at {sandbox.base_url}/servicenow as prep-support"


def test_create_returns_a_new_incident_record(hook: ServiceNowHook, sandbox) -> None:
    created = new_incident(hook, description="HTTP 503 for 3 probes", assignment_group="Payments Support",
                           caller_id="prep-support", impact="2", urgency="1")

    assert len(created["sys_id"]) == 32 and int(created["sys_id"], 16) >= 0
    assert created["number"] == "INC0010001"
    assert {k: created[k] for k in ("state", "active", "correlation_id", "priority", "assignment_group")} == {
        "state": "1", "active": "true", "correlation_id": KEY, "priority": "2", "assignment_group": "Payments Support",
    }
    assert new_incident(hook, "other/key")["number"] == "INC0010002"
    assert hook.get_incident(created["sys_id"]) == created


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        pytest.param("1", "1", "1", id="critical"),
        pytest.param("1", "3", "3", id="high-impact-low-urgency"),
        pytest.param("2", "2", "3", id="moderate"),
        pytest.param("3", "2", "4", id="low"),
        pytest.param("3", "3", "5", id="planning"),
    ],
)
def test_priority_follows_the_default_matrix(hook: ServiceNowHook, impact: str, urgency: str, priority: str) -> None:
    assert new_incident(hook, impact=impact, urgency=urgency)["priority"] == priority


def test_find_open_incident_by_correlation_id(hook: ServiceNowHook, sandbox) -> None:
    assert hook.find_open_incident(KEY) is None
    created = new_incident(hook)
    new_incident(hook, "orders-api/health/down")

    assert hook.find_open_incident(KEY)["sys_id"] == created["sys_id"]
    assert hook.find_open_incident("nothing/like/this") is None
    query = journal(sandbox)[-1]["query"]
    assert "correlation_id%3Dnothing%2Flike%2Fthis%5Eactive%3Dtrue%5EORDERBYDESCsys_created_on" in query


def test_find_open_incident_prefers_the_newest(hook: ServiceNowHook) -> None:
    new_incident(hook)
    newest = new_incident(hook)  # within the same second: sys_created_on ties
    assert hook.find_open_incident(KEY)["sys_id"] == newest["sys_id"]


def test_correlation_id_with_a_query_separator_is_refused(hook: ServiceNowHook) -> None:
    with pytest.raises(ValueError, match="free of '\\^'"):
        hook.find_open_incident("a^ORDERBYnumber")


def test_work_notes_are_appended_to_the_journal(hook: ServiceNowHook, sandbox) -> None:
    created = new_incident(hook, work_notes="Opened by health_sweep")
    hook.add_work_note(created["sys_id"], "Still failing at 10:05")
    updated = hook.add_work_note(created["sys_id"], "Still failing at 10:10")

    assert updated["work_notes"] == ""  # journal fields read back empty, as in ServiceNow
    [stored] = incidents(sandbox)
    assert [(entry["element"], entry["value"]) for entry in stored["journal"]] == [
        ("work_notes", "Opened by health_sweep"),
        ("work_notes", "Still failing at 10:05"),
        ("work_notes", "Still failing at 10:10"),
    ]
    assert updated["sys_mod_count"] == "2"


def test_resolve_sets_resolved_and_inactive(hook: ServiceNowHook) -> None:
    created = new_incident(hook)
    resolved = hook.resolve_incident(created["sys_id"], close_notes="Recovered at 10:15")

    assert {k: resolved[k] for k in ("state", "active", "close_code", "close_notes")} == {
        "state": "6", "active": "false", "close_code": "Solution provided", "close_notes": "Recovered at 10:15",
    }
    assert resolved["resolved_at"]
    assert hook.find_open_incident(KEY) is None


def test_an_itil_user_cannot_read_the_journal_table_but_reads_the_work_notes(hook: ServiceNowHook, sandbox) -> None:
    created = new_incident(hook, work_notes="Opened by health_sweep")
    hook.add_work_note(created["sys_id"], "[prep-support:probe]\nStill failing\n\nat 10:05")
    url = f"{sandbox.base_url}/servicenow/api/now/table/sys_journal_field"
    query = {"sysparm_query": f"element_id={created['sys_id']}^element=work_notes"}

    as_itil = requests.get(url, params=query, auth=("prep-support", SANDBOX_PASSWORD), timeout=TIMEOUT)
    as_admin = requests.get(url, params=query, auth=("admin", ADMIN_PASSWORD), timeout=TIMEOUT)
    assert as_itil.status_code == 403
    assert as_itil.json()["error"] == {"message": "User Not Authorized",
                                       "detail": "2 records constrained due to ACL restrictions"}
    assert len(as_admin.json()["result"]) == 2

    assert hook.journal(created["sys_id"]) == ["Opened by health_sweep",
                                               "[prep-support:probe]\nStill failing\n\nat 10:05"]
    sent = journal(sandbox)[-1]
    assert (sent["path"], parse_qs(sent["query"])) == (
        f"/servicenow/api/now/table/incident/{created['sys_id']}",
        {"sysparm_fields": ["work_notes"], "sysparm_display_value": ["true"]})


def test_a_repeated_work_note_is_added_once(sandbox) -> None:
    tracker = ServiceNowTracker()
    created = new_incident(tracker.hook)
    ticket = Ticket(key=created["number"], id=created["sys_id"], url="")
    for _attempt in range(3):  # a retried task, a re-run
        tracker.comment(ticket, "[prep-support:still-failing:10:05]", "Still failing at 10:05")

    [stored] = incidents(sandbox)
    assert [entry["value"] for entry in stored["journal"]] == [
        "[prep-support:still-failing:10:05]\nStill failing at 10:05"]


def test_resolution_codes_are_read_from_the_instance(hook: ServiceNowHook, sandbox) -> None:
    assert "Solution provided" in hook.close_codes and "Workaround provided" in hook.close_codes
    assert "Solved (Permanently)" not in hook.close_codes  # legacy: inactive on current releases
    created = new_incident(hook)
    assert hook.resolve_incident(created["sys_id"], "Worked around", close_code="Workaround provided")[
        "close_code"] == "Workaround provided"


@pytest.mark.parametrize("configured", ["Solved (Permanently)", "Fixed it"])
def test_a_configured_close_code_the_instance_lacks_is_refused_before_resolving(
        sandbox, monkeypatch: pytest.MonkeyPatch, configured: str) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_SERVICENOW_DEFAULT"])
    conn["extra"]["close_code"] = configured
    monkeypatch.setenv("AIRFLOW_CONN_SERVICENOW_CODED", json.dumps(conn))
    hook = ServiceNowHook(servicenow_conn_id="servicenow_coded")
    created = new_incident(hook)
    start = len(journal(sandbox))

    with pytest.raises(ValueError, match=rf"close_code '{re.escape(configured)}' \(Connection 'servicenow_coded', "
                                         r"extra 'close_code'\) is not an active resolution code .*Solution provided"):
        hook.resolve_incident(created["sys_id"], close_notes="Recovered")
    assert hook.get_incident(created["sys_id"])["state"] == "1"
    assert [call["method"] for call in journal(sandbox)[start:]] == ["GET", "GET"]  # the choices, the check


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"state": "6", "close_notes": "Recovered"}, id="no-close-code"),
        pytest.param({"state": "6", "close_code": "", "close_notes": "Recovered"}, id="empty-close-code"),
    ],
)
def test_resolving_without_close_code_is_refused_clearly(hook: ServiceNowHook, fields: dict[str, str]) -> None:
    created = new_incident(hook)
    with pytest.raises(HttpError) as raised:
        hook.update_incident(created["sys_id"], fields)

    assert raised.value.status == 400
    message = str(raised.value)
    assert message.startswith(f"PATCH {hook.conn_params.base_url}/api/now/table/incident/{created['sys_id']} failed")
    assert "Data Policy Exception" in message and "close_code" in message
    assert hook.get_incident(created["sys_id"])["state"] == "1"


def test_attach_file(hook: ServiceNowHook, sandbox) -> None:
    created = new_incident(hook)
    content = b"time,status\n10:00,503\n10:05,503\n"
    attachment = hook.attach_file(created["sys_id"], "probe-results.csv", content, "text/csv")

    assert len(attachment["sys_id"]) == 32
    assert {k: attachment[k] for k in ("table_name", "table_sys_id", "file_name", "content_type", "size_bytes")} == {
        "table_name": "incident", "table_sys_id": created["sys_id"], "file_name": "probe-results.csv",
        "content_type": "text/csv", "size_bytes": str(len(content)),
    }
    assert attachment["hash"] == hashlib.sha256(content).hexdigest()
    sent = journal(sandbox)[-1]
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", "/servicenow/api/now/attachment/file", 201)
    assert parse_qs(sent["query"]) == {
        "table_name": ["incident"], "table_sys_id": [created["sys_id"]], "file_name": ["probe-results.csv"],
    }
    [stored] = incidents(sandbox)
    assert stored["attachments"] == [attachment]


def test_list_follows_pagination_to_the_end(hook: ServiceNowHook, sandbox) -> None:
    numbers = [new_incident(hook, f"svc-{index}/health/down")["number"] for index in range(5)]
    start = len(journal(sandbox))

    found = hook.list_incidents("active=true^ORDERBYnumber", fields=["number", "correlation_id"], page_size=2)

    assert [incident["number"] for incident in found] == numbers
    assert set(found[0]) == {"number", "correlation_id"}
    pages = journal(sandbox)[start:]
    assert [page["method"] for page in pages] == ["GET"] * 3
    assert [parse_qs(page["query"]).get("sysparm_offset", ["0"])[0] for page in pages] == ["0", "2", "4"]


def test_get_answered_503_with_retry_after_is_waited_out(hook: ServiceNowHook, sandbox) -> None:
    created = new_incident(hook)
    inject(sandbox, status=503, retry_after_s=1, times=1)
    start, began = len(journal(sandbox)), time.monotonic()

    assert hook.get_incident(created["sys_id"])["sys_id"] == created["sys_id"]

    assert time.monotonic() - began >= 1.0
    assert [call["status"] for call in journal(sandbox)[start:]] == [503, 200]


def test_post_answered_500_is_not_retried(hook: ServiceNowHook, sandbox) -> None:
    inject(sandbox, status=500, times=1)
    start = len(journal(sandbox))

    with pytest.raises(HttpError, match=r"^POST http://127\.0\.0\.1:\d+/servicenow/api/now/table/incident failed: "
                                        r"HTTP 500: .*Injected fault") as raised:
        new_incident(hook)

    assert raised.value.status == 500
    assert [(call["method"], call["status"]) for call in journal(sandbox)[start:]] == [("POST", 500)]
    assert incidents(sandbox) == []


def test_wrong_password_is_refused_without_showing_it(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_SERVICENOW_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_SERVICENOW_WRONG", json.dumps({**conn, "password": "not-the-password"}))
    hook = ServiceNowHook(servicenow_conn_id="servicenow_wrong")

    with pytest.raises(HttpError) as raised:
        hook.find_open_incident(KEY)

    assert raised.value.status == 401
    assert "User Not Authenticated" in str(raised.value)
    assert "not-the-password" not in str(raised.value)
    assert hook.test_connection()[0] is False


def test_missing_credentials_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = {"conn_type": "http", "host": "acme.service-now.com"}
    monkeypatch.setenv("AIRFLOW_CONN_SERVICENOW_BARE", json.dumps(bare))
    with pytest.raises(ValueError, match="'servicenow_bare' needs login, password"):
        ServiceNowHook(servicenow_conn_id="servicenow_bare").find_open_incident("a/b")


def test_production_connection_defaults_to_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SERVICENOW_PROD", json.dumps(
        {"conn_type": "http", "host": "acme.service-now.com", "login": "svc", "password": "pw"}
    ))
    assert ServiceNowHook(servicenow_conn_id="servicenow_prod").conn_params.base_url == "https://acme.service-now.com"

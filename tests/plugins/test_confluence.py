"""ConfluenceHook against the sandbox's Confluence REST API (v2 pages, v1 attachments), over real HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from hooks.confluence import ConfluenceHook, Page
from hooks.http_client import HttpError

TIMEOUT = 10
BODY = "<h1>Payments API</h1><p>Restart with <code>systemctl restart payments</code>.</p>"


@pytest.fixture(autouse=True)
def _clean_confluence(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/confluence/_sandbox/pages", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


@pytest.fixture
def hook() -> ConfluenceHook:
    return ConfluenceHook()


def pages(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/confluence/_sandbox/pages", timeout=TIMEOUT).json()["pages"]


def journal(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/sandbox/requests/confluence", timeout=TIMEOUT).json()["requests"]


def calls_since(sandbox, start: int) -> list[tuple[str, str]]:
    return [(call["method"], call["path"]) for call in journal(sandbox)[start:]]


def test_publish_creates_the_page_under_a_new_parent(hook: ConfluenceHook, sandbox) -> None:
    page = hook.publish_page("Runbook: payments-api", BODY, parent_title="Runbooks")

    assert isinstance(page, Page) and page.version == 1 and page.title == "Runbook: payments-api"
    assert page.url.startswith(f"{sandbox.base_url}/confluence/wiki/spaces/SUP/pages/{page.id}/")
    parent, child = pages(sandbox)
    assert (parent["title"], parent["body"], parent["ancestors"]) == ("Runbooks", "", [])
    assert (child["title"], child["space"], child["body"], child["ancestors"]) == (
        "Runbook: payments-api", "SUP", BODY, ["Runbooks"])
    assert hook.find_page("Runbook: payments-api") == page
    assert hook.page_body(page) == BODY


def test_publish_updates_in_place_and_skips_an_unchanged_body(hook: ConfluenceHook, sandbox) -> None:
    first = hook.publish_page("Service: orders-api", BODY, parent_title="Services")
    again = hook.publish_page("Service: orders-api", BODY, parent_title="Services")
    start = len(journal(sandbox))
    third = hook.publish_page("Service: orders-api", BODY, parent_title="Services")

    assert first == again == third
    assert all(method == "GET" for method, _path in calls_since(sandbox, start)), "no change: nothing but reads"

    changed = hook.publish_page("Service: orders-api", BODY + "<p>On call: team B</p>", parent_title="Services")
    assert (changed.id, changed.version) == (first.id, 2)
    stored = [p for p in pages(sandbox) if p["title"] == "Service: orders-api"]
    assert len(stored) == 1, "updated in place, never a duplicate"
    assert [v["body"] for v in stored[0]["versions"]] == [BODY, BODY + "<p>On call: team B</p>"]
    assert hook.find_page("Service: orders-api").version == 2


def test_script_in_the_body_is_stored_exactly_as_given(hook: ConfluenceHook, sandbox) -> None:
    escaped = "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    raw = "<p><script>alert(1)</script></p>"
    hook.publish_page("Escaped", escaped)
    hook.publish_page("Raw", raw)

    bodies = {p["title"]: p["body"] for p in pages(sandbox)}
    assert bodies == {"Escaped": escaped, "Raw": raw}  # the hook never (un)escapes: the caller's template does


def test_a_concurrent_create_is_resolved_by_finding_the_page(hook: ConfluenceHook, sandbox) -> None:
    other = ConfluenceHook()
    winner = other.publish_page("Race", "<p>theirs</p>")
    # Our lookup saw no page (we simulate the lost race by calling the create step directly).
    page = hook._create("Race", "<p>ours</p>", "SUP", None)

    assert (page.id, page.version) == (winner.id, 2)
    assert [(p["title"], p["body"]) for p in pages(sandbox)] == [("Race", "<p>ours</p>")]


def test_a_stale_version_conflict_is_retried_from_the_current_version(hook: ConfluenceHook, sandbox) -> None:
    page = hook.publish_page("Conflict", "<p>v1</p>")
    stale = hook._find("Conflict", "SUP")
    ConfluenceHook().publish_page("Conflict", "<p>v2 by someone else</p>")

    with pytest.raises(HttpError) as raised:
        hook._update(stale, "<p>v3</p>", None)
    assert raised.value.status == 409 and "Current version is: 2" in str(raised.value)

    assert hook.publish_page("Conflict", "<p>v3</p>").version == 3
    assert hook.page_body(page) == "<p>v3</p>"


def test_find_page_follows_pagination_to_the_end(hook: ConfluenceHook, sandbox, monkeypatch) -> None:
    monkeypatch.setattr("hooks.confluence.PAGE_SIZE", 2)
    for index in range(5):
        hook.publish_page(f"KB {index}", f"<p>{index}</p>", space="KB")
    start = len(journal(sandbox))

    everything = hook._v2_pages({"space-id": hook.space_id("KB")})

    assert [p["title"] for p in everything] == [f"KB {index}" for index in range(5)]
    lists = [call for call in journal(sandbox)[start:] if call["path"].endswith("/wiki/api/v2/pages")]
    assert len(lists) == 3 and "cursor" not in parse_qs(lists[0]["query"])
    assert all("cursor" in parse_qs(call["query"]) for call in lists[1:])  # v2's cursor, not start offsets
    assert hook.find_page("KB 3", space="KB").title == "KB 3"
    assert hook.find_page("KB 3") is None  # another space


def test_pages_go_through_the_v2_api_and_only_uploads_through_v1(hook: ConfluenceHook, sandbox) -> None:
    """Atlassian deprecated the v1 content endpoints for pages; v1 stays for attachment upload."""
    start = len(journal(sandbox))
    page = hook.publish_page("Runbook: orders-api", BODY, parent_title="Runbooks")
    hook.publish_page("Runbook: orders-api", BODY + "<p>v2</p>", parent_title="Runbooks")
    hook.page_body(page)
    hook.attach_file(page.id, "evidence.csv", b"a,b\n", "text/csv")

    calls = calls_since(sandbox, start)
    v1 = sorted({(method, path.split("/wiki/rest/api/", 1)[1]) for method, path in calls if "/wiki/rest/api/" in path})
    assert v1 == [("POST", f"content/{page.id}/child/attachment")]
    assert {(method, path.split("/wiki/api/v2/", 1)[1]) for method, path in calls if "/wiki/api/v2/" in path} == {
        ("GET", "spaces"), ("GET", "pages"), ("POST", "pages"), ("PUT", f"pages/{page.id}"),
        ("GET", f"pages/{page.id}"), ("GET", f"pages/{page.id}/attachments")}
    [stored] = [p for p in pages(sandbox) if p["title"] == "Runbook: orders-api"]
    assert stored["ancestors"] == ["Runbooks"] and stored["versions"][-1]["body"] == BODY + "<p>v2</p>"


def test_attachment_new_version_only_when_the_bytes_change(hook: ConfluenceHook, sandbox) -> None:
    page = hook.publish_page("Evidence", "<p>see attachments</p>")
    first = b"user,decision\nalice,keep\n"

    attachment_id = hook.attach_file(page.id, "decisions.csv", first, "text/csv")
    start = len(journal(sandbox))
    assert hook.attach_file(page.id, "decisions.csv", first, "text/csv") == attachment_id
    assert all(method == "GET" for method, _path in calls_since(sandbox, start))

    second = first + b"bob,revoke\n"
    assert hook.attach_file(page.id, "decisions.csv", second, "text/csv") == attachment_id
    [stored] = pages(sandbox)[0]["attachments"]
    assert (stored["filename"], stored["versions"], stored["sha256"], stored["media_type"]) == (
        "decisions.csv", 2, hashlib.sha256(second).hexdigest(), "text/csv")
    assert stored["comment"] == f"prep-support sha256:{hashlib.sha256(second).hexdigest()}"


def test_attachment_uploaded_by_someone_else_is_compared_by_download(hook: ConfluenceHook, sandbox) -> None:
    page = hook.publish_page("Manual", "<p>x</p>")
    content = b"uploaded by hand"
    url = f"{sandbox.base_url}/confluence/wiki/rest/api/content/{page.id}/child/attachment"
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_CONFLUENCE_DEFAULT"])
    upload = requests.post(url, files={"file": ("notes.txt", content, "text/plain")}, timeout=TIMEOUT,
                           auth=(conn["login"], conn["password"]), headers={"X-Atlassian-Token": "no-check"})
    upload.raise_for_status()
    start = len(journal(sandbox))

    assert hook.attach_file(page.id, "notes.txt", content, "text/plain") == upload.json()["results"][0]["id"]

    assert ("GET", f"/confluence/wiki/download/attachments/{page.id}/notes.txt") in calls_since(sandbox, start)
    assert pages(sandbox)[0]["attachments"][0]["versions"] == 1


def test_attachment_upload_without_the_xsrf_header_is_refused(sandbox) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_CONFLUENCE_DEFAULT"])
    page = ConfluenceHook().publish_page("XSRF", "<p>x</p>")
    answer = requests.post(f"{sandbox.base_url}/confluence/wiki/rest/api/content/{page.id}/child/attachment",
                           files={"file": ("a.txt", b"a")}, auth=(conn["login"], conn["password"]), timeout=TIMEOUT)
    assert answer.status_code == 403 and answer.json()["message"] == "XSRF check failed"


def test_rate_limit_with_retry_after_is_waited_out(hook: ConfluenceHook, sandbox) -> None:
    requests.put(f"{sandbox.base_url}/sandbox/faults/confluence", json={"status": 429, "retry_after_s": 1, "times": 1},
                 timeout=TIMEOUT).raise_for_status()
    start, began = len(journal(sandbox)), time.monotonic()

    page = hook.publish_page("Rate limited", "<p>x</p>")

    assert time.monotonic() - began >= 1.0
    calls = [(call["method"], call["status"]) for call in journal(sandbox)[start:]]
    assert calls == [("GET", 429), ("GET", 200), ("GET", 200), ("POST", 200)]  # the space's id, the title, create
    assert page.version == 1 and [p["title"] for p in pages(sandbox)] == ["Rate limited"]


def test_bad_credentials_name_the_connection_not_the_token(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_CONFLUENCE_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_CONFLUENCE_WRONG", json.dumps({**conn, "password": "not-the-token"}))
    hook = ConfluenceHook(confluence_conn_id="confluence_wrong")

    with pytest.raises(HttpError) as raised:
        hook.find_page("anything")

    assert raised.value.status == 401
    assert "Connection 'confluence_wrong'" in str(raised.value)
    assert "not-the-token" not in str(raised.value)
    assert hook.test_connection()[0] is False


def test_missing_space_and_credentials_are_named(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CONFLUENCE_BARE", json.dumps({"conn_type": "http", "host": "https://a.b"}))
    with pytest.raises(ValueError, match="'confluence_bare' needs login, password for Confluence"):
        ConfluenceHook(confluence_conn_id="confluence_bare").find_page("x")
    monkeypatch.setenv("AIRFLOW_CONN_CONFLUENCE_NOSPACE", json.dumps(
        {"conn_type": "http", "host": "https://acme.atlassian.net", "login": "a@b.c", "password": "t"}))
    with pytest.raises(ValueError, match="'confluence_nospace' needs extra 'space'"):
        _ = ConfluenceHook(confluence_conn_id="confluence_nospace").default_space


def test_unknown_space_is_named(hook: ConfluenceHook) -> None:
    with pytest.raises(ValueError, match=r"\(Connection 'confluence_default'\) has no space with key 'NOPE'"):
        hook.publish_page("Lost", "<p>x</p>", space="NOPE")

"""SharePointHook against the sandbox's Microsoft Graph and token endpoint, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from hooks.http_client import HttpError
from hooks.sharepoint import SharePointHook
from sandbox.graph import SITE_ID

TIMEOUT = 10
RUNBOOK = b"<h1>payments-api</h1><p>Restart it.</p>"


@pytest.fixture(autouse=True)
def _clean_graph(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/graph/_sandbox/files", timeout=TIMEOUT).raise_for_status()
    requests.put(f"{sandbox.base_url}/graph/_sandbox/token-lifetime", json={"seconds": 3599},
                 timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()


@pytest.fixture
def hook() -> SharePointHook:
    return SharePointHook()


def files(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/graph/_sandbox/files", timeout=TIMEOUT).json()["files"]


def journal(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/sandbox/requests/graph", timeout=TIMEOUT).json()["requests"]


def calls_since(sandbox, start: int) -> list[tuple[str, str, Any]]:
    return [(call["method"], call["path"], call["status"]) for call in journal(sandbox)[start:]]


def test_upload_creates_then_replaces_in_place(hook: SharePointHook, sandbox) -> None:
    created = hook.upload_file("Support/Runbooks", "payments-api.html", RUNBOOK)

    assert (created["name"], created["size"], created["file"]["mimeType"]) == (
        "payments-api.html", len(RUNBOOK), "text/html")
    assert created["webUrl"] == "https://contoso.sharepoint.com/sites/support/Shared%20Documents/Support/Runbooks/payments-api.html"
    assert hook.download("Support/Runbooks/payments-api.html") == RUNBOOK

    changed = RUNBOOK.replace(b"Restart it.", b"Fail over to site B.")
    replaced = hook.upload_file("Support/Runbooks", "payments-api.html", changed)

    assert replaced["id"] == created["id"] and replaced["eTag"] != created["eTag"]
    [stored] = files(sandbox)
    assert (stored["path"], stored["versions"], stored["sha256"]) == (
        "Support/Runbooks/payments-api.html", 2, hashlib.sha256(changed).hexdigest())


def test_identical_bytes_are_not_uploaded_again(hook: SharePointHook, sandbox) -> None:
    first = hook.upload_file("Support", "kb.html", RUNBOOK)
    start = len(journal(sandbox))

    again = hook.upload_file("Support", "kb.html", RUNBOOK)

    assert again["eTag"] == first["eTag"]
    assert all(method == "GET" for method, _path, _status in calls_since(sandbox, start))
    assert files(sandbox)[0]["versions"] == 1
    # Same size, different bytes: compared by download, then uploaded.
    same_size = RUNBOOK.upper()
    assert hook.upload_file("Support", "kb.html", same_size)["eTag"] != first["eTag"]
    assert files(sandbox)[0]["sha256"] == hashlib.sha256(same_size).hexdigest()


def test_list_folder_follows_next_links_to_the_end(hook: SharePointHook, sandbox) -> None:
    names = [f"page-{index:02d}.html" for index in range(7)]
    for name in names:
        hook.upload_file("Support/KB", name, name.encode())
    hook.upload_file("Support/KB/archive", "old.html", b"old")
    start = len(journal(sandbox))

    children = hook.list_folder("Support/KB", page_size=3)

    assert [c["name"] for c in children] == ["archive", *names]
    assert children[0]["folder"] == {"childCount": 1} and "file" in children[1]
    pages = [parse_qs(call["query"]).get("$skiptoken", ["0"])[0] for call in journal(sandbox)[start:]]
    assert pages == ["0", "3", "6"]


def test_paths_with_spaces_and_unicode(hook: SharePointHook, sandbox) -> None:
    item = hook.upload_file("Support/Runbooks 2024", "Zürich payments #1.txt", b"x")
    assert item["name"] == "Zürich payments #1.txt"
    assert [c["name"] for c in hook.list_folder("Support/Runbooks 2024")] == ["Zürich payments #1.txt"]
    assert hook.download("Support/Runbooks 2024/Zürich payments #1.txt") == b"x"
    # The same bytes again under that path are found (encoded once), so no new version is made.
    hook.upload_file("Support/Runbooks 2024", "Zürich payments #1.txt", b"x")
    assert [f["versions"] for f in files(sandbox) if f["path"].startswith("Support/Runbooks 2024/")] == [1]
    with pytest.raises(ValueError, match="without '/'"):
        hook.upload_file("Support", "a/b.txt", b"x")


def test_token_is_cached_and_renewed_after_a_401(hook: SharePointHook, sandbox) -> None:
    start = len(journal(sandbox))
    hook.upload_file("Support", "one.txt", b"1")
    hook.upload_file("Support", "two.txt", b"2")
    token_calls = [c for c in calls_since(sandbox, start) if c[1].endswith("/token")]
    assert len(token_calls) == 1

    requests.post(f"{sandbox.base_url}/graph/_sandbox/revoke-tokens", timeout=TIMEOUT).raise_for_status()
    start = len(journal(sandbox))
    assert hook.download("Support/one.txt") == b"1"

    calls = [(method, path.rsplit("/", 1)[-1], status) for method, path, status in calls_since(sandbox, start)]
    assert calls[:3] == [("GET", "content", 401), ("POST", "token", 200), ("GET", "content", 302)]
    assert [status for _method, _key, status in calls[3:]] == [200]  # the download URL


def test_expired_token_is_renewed_before_the_call(hook: SharePointHook, sandbox) -> None:
    requests.put(f"{sandbox.base_url}/graph/_sandbox/token-lifetime", json={"seconds": 1},
                 timeout=TIMEOUT).raise_for_status()
    hook.upload_file("Support", "a.txt", b"a")
    time.sleep(1.1)
    start = len(journal(sandbox))

    assert hook.download("Support/a.txt") == b"a"

    # The token, the content's redirect, the download URL.
    assert [status for _m, _p, status in calls_since(sandbox, start)] == [200, 302, 200]


def test_rate_limit_with_retry_after_is_waited_out(hook: SharePointHook, sandbox) -> None:
    hook.upload_file("Support", "a.txt", b"a")
    requests.put(f"{sandbox.base_url}/sandbox/faults/graph", json={"status": 429, "retry_after_s": 1, "times": 1},
                 timeout=TIMEOUT).raise_for_status()
    start, began = len(journal(sandbox)), time.monotonic()

    assert [c["name"] for c in hook.list_folder("Support")] == ["a.txt"]

    assert time.monotonic() - began >= 1.0
    assert [status for _m, _p, status in calls_since(sandbox, start)] == [429, 200]


def test_missing_file_is_a_404(hook: SharePointHook) -> None:
    assert hook.get_item("Support/nothing.txt") is None
    with pytest.raises(HttpError) as raised:
        hook.download("Support/nothing.txt")
    assert raised.value.status == 404 and "itemNotFound" in str(raised.value)


def test_bad_client_secret_names_the_connection_not_the_secret(sandbox, monkeypatch) -> None:
    conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_SHAREPOINT_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_SHAREPOINT_WRONG", json.dumps({**conn, "password": "not-the-secret"}))
    hook = SharePointHook(sharepoint_conn_id="sharepoint_wrong")

    with pytest.raises(HttpError) as raised:
        hook.list_folder("Support")

    assert raised.value.status == 401
    message = str(raised.value)
    assert "Connection 'sharepoint_wrong'" in message and "AADSTS7000215" in message
    assert "not-the-secret" not in message
    assert hook.test_connection()[0] is False


def test_connection_finds_the_site(hook: SharePointHook) -> None:
    assert hook.test_connection() == (True, f"Found site contoso.sharepoint.com:/sites/support ({SITE_ID})")


def test_missing_extra_is_named(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SHAREPOINT_BARE", json.dumps(
        {"conn_type": "http", "host": "graph.microsoft.com", "login": "id", "password": "secret"}))
    with pytest.raises(ValueError, match="'sharepoint_bare' needs extra 'site', 'tenant_id'"):
        SharePointHook(sharepoint_conn_id="sharepoint_bare").list_folder("x")


def downloads(sandbox) -> dict[str, Any]:
    return requests.get(f"{sandbox.base_url}/graph/_sandbox/downloads", timeout=TIMEOUT).json()


@pytest.mark.parametrize("same_host", [False, True], ids=["other-host", "same-host"])
def test_a_download_follows_graphs_redirect_without_the_token(hook: SharePointHook, sandbox, same_host: bool) -> None:
    """Graph answers 302 to a pre-authenticated URL on another host; the bearer token never goes there."""
    hook.upload_file("Support", "runbook.html", RUNBOOK)
    requests.put(f"{sandbox.base_url}/graph/_sandbox/download-host", json={"same": same_host},
                 timeout=TIMEOUT).raise_for_status()
    seen = len(downloads(sandbox)["downloads"])

    assert hook.download("Support/runbook.html") == RUNBOOK

    [fetched] = downloads(sandbox)["downloads"][seen:]
    assert fetched["authorization"] is False
    second_port = int(downloads(sandbox)["download_base_url"].rsplit(":", 1)[1])
    assert fetched["port"] == (sandbox.http_port if same_host else second_port) != (
        second_port if same_host else sandbox.http_port)

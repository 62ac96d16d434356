"""Jira Cloud vs Jira Server/Data Center: the stand-in's two modes, and our hook working in both.

Jira Cloud retired ``/rest/api/{2,3}/search`` (410 Gone, https://developer.atlassian.com/changelog/#CHANGE-2046)
for ``/rest/api/{2,3}/search/jql``: token paging, ``isLast``, no ``total``, and an index that shows a
new issue only after a moment unless ``reconcileIssues`` names it.
"""

from __future__ import annotations

import pytest
import requests

from sandbox.jira import SANDBOX_PASSWORD, SANDBOX_USER
from tests.sandbox_client import call

AUTH = (SANDBOX_USER, SANDBOX_PASSWORD)
TIMEOUT = 10


@pytest.fixture(autouse=True)
def _clean_jira(sandbox):
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    call(sandbox.base_url, "DELETE", "/jira/_sandbox/issues")
    yield
    call(sandbox.base_url, "DELETE", "/sandbox/faults")


def rest(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.base_url}/jira/rest/api/{path}", auth=AUTH, timeout=TIMEOUT, **kwargs)


def new_issue(sandbox, summary: str, label: str = "cloud-test") -> dict:
    answer = rest(sandbox, "POST", "2/issue", json={"fields": {
        "project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": summary, "labels": [label]}})
    answer.raise_for_status()
    return answer.json()


def keys(sandbox) -> list[str]:
    return [i["key"] for i in call(sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]]


def test_cloud_mode_says_cloud_and_retires_the_old_search(sandbox, jira_cloud) -> None:
    assert rest(sandbox, "GET", "2/serverInfo").json()["deploymentType"] == "Cloud"
    for path in ("2/search", "3/search"):
        for method in ("GET", "POST"):
            answer = rest(sandbox, method, path, **({"json": {"jql": ""}} if method == "POST" else {}))
            assert answer.status_code == 410, (method, path)
            assert "CHANGE-2046" in answer.json()["errorMessages"][0]


def test_server_mode_keeps_the_old_search_and_has_no_v3(sandbox) -> None:
    assert rest(sandbox, "GET", "2/serverInfo").json()["deploymentType"] == "Server"
    assert rest(sandbox, "GET", "2/search", params={"jql": ""}).json()["total"] == 0
    assert rest(sandbox, "GET", "3/search").status_code == 404


def test_cloud_search_pages_by_token_and_shows_a_new_issue_only_after_a_moment(sandbox, jira_cloud) -> None:
    call(sandbox.base_url, "PUT", "/jira/_sandbox/deployment", {"deploymentType": "Cloud", "index_lag_s": 30})
    issue = new_issue(sandbox, "just made")
    query = {"jql": "labels = cloud-test", "fields": ["summary"]}

    assert rest(sandbox, "POST", "2/search/jql", json=query).json() == {"issues": [], "isLast": True}
    reconciled = rest(sandbox, "POST", "2/search/jql", json={**query, "reconcileIssues": [int(issue["id"])]}).json()
    assert [i["key"] for i in reconciled["issues"]] == [issue["key"]] and "total" not in reconciled
    by_get = rest(sandbox, "GET", "2/search/jql", params={"jql": "labels = cloud-test",
                                                         "reconcileIssues": issue["id"]}).json()
    assert by_get["issues"] == [{"id": issue["id"]}]  # without fields, Cloud answers ids only


@pytest.mark.parametrize("size", [0, 201])
def test_our_search_reads_every_issue_in_both_deployments(sandbox, jira_deployment, size) -> None:
    from hooks.trackers import JiraIssues

    call(sandbox.base_url, "PUT", "/jira/_sandbox/deployment", {"deploymentType": jira_deployment, "index_lag_s": 0})
    made = [new_issue(sandbox, f"issue {n}")["key"] for n in range(size)]
    mark = len(call(sandbox.base_url, "GET", "/sandbox/requests/jira")["requests"])

    found = JiraIssues().search("labels = cloud-test ORDER BY key ASC", fields="summary")

    assert [issue["key"] for issue in found] == made
    assert [issue["fields"]["summary"] for issue in found[:2]] == [f"issue {n}" for n in range(min(size, 2))]
    calls = call(sandbox.base_url, "GET", "/sandbox/requests/jira")["requests"][mark:]
    searches = [c["path"].rsplit("/api/2/", 1)[1] for c in calls if "/search" in c["path"]]
    assert searches == [{"Cloud": "search/jql", "Server": "search"}[jira_deployment]] * max(1, -(-size // 100))


def test_on_cloud_a_ticket_we_just_created_is_found_at_once(sandbox, jira_cloud) -> None:
    """Search-before-create on the next incident of the same key must see the ticket despite the index lag."""
    from hooks.trackers import JiraTracker
    from tests.plugins.test_lost_answer import ROUTE

    call(sandbox.base_url, "PUT", "/jira/_sandbox/deployment", {"deploymentType": "Cloud", "index_lag_s": 30})
    tracker = JiraTracker()
    ticket = tracker.create(dedup_key="orders-api/health/availability", summary="Orders down", description="503",
                            route=ROUTE)

    assert tracker.find_open("orders-api/health/availability") == ticket
    assert JiraTracker().find_open("orders-api/health/availability") is None  # another worker: not yet indexed


def test_the_old_client_search_fails_on_cloud_which_is_why_the_hook_asks(sandbox, jira_cloud) -> None:
    """What the hook did before: JiraHook's client calls the retired endpoint, and Cloud refuses it."""
    from airflow.providers.atlassian.jira.hooks.jira import JiraHook

    with pytest.raises(requests.HTTPError) as refused:
        JiraHook(jira_conn_id="jira_default").get_conn().jql("labels = cloud-test")
    assert refused.value.response.status_code == 410

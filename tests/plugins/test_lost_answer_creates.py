"""Under the sandbox's "lost answer" fault (the create is carried out, its answer never arrives), each create
the project makes in ServiceNow, Statuspage, Confluence and SharePoint leaves exactly one object; a Teams
webhook offers no lookup, and the outbox's behaviour there is shown as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prep_support.routing import ResolvedRoute, Tracker
from tests.sandbox_client import call

KEY = "orders-api/health/availability"


@pytest.fixture(autouse=True)
def _clean(sandbox):
    for path in ("/sandbox/faults", "/servicenow/_sandbox/incidents", "/statuspage/_sandbox/state",
                 "/confluence/_sandbox/pages", "/graph/_sandbox/files"):
        call(sandbox.base_url, "DELETE", path)
    yield
    call(sandbox.base_url, "DELETE", "/sandbox/faults")


def lose_next_answer(sandbox, system: str, method: str, path: str) -> None:
    call(sandbox.base_url, "PUT", f"/sandbox/faults/{system}",
         {"lost_answer": True, "times": 1, "method": method, "path": path})


def journal(sandbox, system: str) -> list[dict]:
    return call(sandbox.base_url, "GET", f"/sandbox/requests/{system}")["requests"]


def lost_creates(sandbox, system: str, method: str, path_end: str, since: int) -> list[str]:
    """The statuses of the ``method`` calls to ``path_end`` the system received since ``since``."""
    return [c["status"] for c in journal(sandbox, system)[since:] if c["method"] == method
            and c["path"].endswith(path_end)]


def test_a_servicenow_incident_whose_create_answer_was_lost_is_made_once(sandbox) -> None:
    from hooks.trackers import ServiceNowTracker

    route = ResolvedRoute.model_validate({"tracker": Tracker(system="servicenow"), "project": "", "priority": "High",
                                          "slack_channel": "#commerce-support", "channels": {}})
    since = len(journal(sandbox, "servicenow"))
    lose_next_answer(sandbox, "servicenow", "POST", "/api/now/table/incident$")

    ticket = ServiceNowTracker().create(dedup_key=KEY, summary="Orders down", description="503", route=route)

    [incident] = call(sandbox.base_url, "GET", "/servicenow/_sandbox/incidents")["incidents"]
    assert (ticket.key, incident["correlation_id"]) == (incident["number"], KEY)
    assert lost_creates(sandbox, "servicenow", "POST", "/table/incident", since) == ["lost (201)"]


def test_a_statuspage_incident_whose_create_answer_was_lost_is_made_once(sandbox) -> None:
    from hooks.statuspage import StatuspageHook

    hook = StatuspageHook()
    orders = hook.component_ids(["orders-api"])["orders-api"]
    since = len(journal(sandbox, "statuspage"))
    lose_next_answer(sandbox, "statuspage", "POST", "/incidents$")

    incident = hook.create_incident(key="outage/orders-api/1", name="Orders are failing", status="investigating",
                                    body="Looking into it.", impact="major",
                                    component_statuses={orders: "partial_outage"})

    [stored] = call(sandbox.base_url, "GET", "/statuspage/_sandbox/state")["incidents"]
    assert incident["id"] == stored["id"]
    assert lost_creates(sandbox, "statuspage", "POST", "/incidents", since) == ["lost (201)"]


def test_a_confluence_page_whose_create_answer_was_lost_is_made_once(sandbox) -> None:
    from hooks.confluence import ConfluenceHook

    since = len(journal(sandbox, "confluence"))
    lose_next_answer(sandbox, "confluence", "POST", "/wiki/api/v2/pages$")

    page = ConfluenceHook().publish_page("Runbook: orders-api", "<p>Restart it.</p>")

    [stored] = call(sandbox.base_url, "GET", "/confluence/_sandbox/pages")["pages"]
    assert (page.id, stored["title"], len(stored["versions"])) == (stored["id"], "Runbook: orders-api", 1)
    assert lost_creates(sandbox, "confluence", "POST", "/wiki/api/v2/pages", since) == ["lost (200)"]


def test_a_sharepoint_upload_whose_answer_was_lost_leaves_one_file(sandbox) -> None:
    from hooks.sharepoint import SharePointHook

    since = len(journal(sandbox, "graph"))
    lose_next_answer(sandbox, "graph", "PUT", ":/content$")

    item = SharePointHook().upload_file("Support/Runbooks", "orders-api.html", b"<h1>orders-api</h1>")

    [stored] = call(sandbox.base_url, "GET", "/graph/_sandbox/files")["files"]
    assert (stored["path"], stored["id"]) == ("Support/Runbooks/orders-api.html", item["id"])
    # An upload is a PUT to the file's path: repeating it replaces the file in place.
    assert lost_creates(sandbox, "graph", "PUT", ":/content", since) == ["lost (201)", 200]


def test_a_teams_card_whose_answer_was_lost_is_posted_again_by_the_outbox(sandbox, support_engine) -> None:
    """A Teams incoming webhook answers only '1' and offers no way to read the channel back, so a card whose
    answer was lost cannot be looked up. The outbox records the failure and the retry posts it again: two
    cards. This is the documented limit of the channel (at least once, never silently dropped)."""
    from hooks.channels import TeamsSender
    from prep_support import outbox

    teams_cards = lambda: call(sandbox.base_url, "GET", "/teams/_sandbox/messages")["messages"]  # noqa: E731
    before = len(teams_cards())
    lose_next_answer(sandbox, "teams", "POST", "/webhook/")
    key = f"lost-answer:{datetime.now(UTC).timestamp()}:teams"

    def send_card() -> outbox.Sent:
        row = type("Row", (), {"key": key, "conn_id": "teams_default", "target": "#commerce-support",
                               "event": "opened", "body": "Orders API is down\nStatus: 503"})()
        return TeamsSender().send(row, None)

    with pytest.raises(Exception, match="ConnectionError|RemoteDisconnected|failed"):
        outbox.send_once(support_engine, key=key, event="opened", channel="teams", conn_id="teams_default",
                         target="#commerce-support", subject="Orders API is down", body="Orders API is down",
                         send=send_card, now=datetime.now(UTC))
    assert outbox.send_once(support_engine, key=key, event="opened", channel="teams", conn_id="teams_default",
                            target="#commerce-support", subject="Orders API is down", body="Orders API is down",
                            send=send_card, now=datetime.now(UTC))
    assert len(teams_cards()) - before == 2
    # Once recorded as sent, the ledger never sends it again.
    assert not outbox.send_once(support_engine, key=key, event="opened", channel="teams", conn_id="teams_default",
                                target="#commerce-support", subject="Orders API is down", body="Orders API is down",
                                send=send_card, now=datetime.now(UTC))
    assert len(teams_cards()) - before == 2

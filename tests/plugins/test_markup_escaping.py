"""Text that reaches a tracker or a status page shows as typed, in that system's own markup (issue 12).

Evidence and form text quote what monitored systems, failing rows and people wrote. Slack and Teams
were escaped already (prep_support.messages.slack_text, hooks.teams.text_runs); here Jira's wiki
markup and Statuspage's Markdown/HTML, asserted on what the sandbox's Jira and Statuspage received.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from prep_support.messages import jira_text, statuspage_text
from tests.sandbox_client import call

HOSTILE = "see [log in|https://evil.example/login] !https://evil.example/x.png! {html}<b>x</b>{html} [~admin]"


@pytest.mark.parametrize(("text", "shown"), [
    pytest.param("[log in|https://evil.example]", r"\[log in\|https://evil.example\]", id="link"),
    pytest.param("!https://evil.example/a.png!", r"\!https://evil.example/a.png\!", id="image"),
    pytest.param("{code}x{code}", r"\{code\}x\{code\}", id="macro"),
    pytest.param("[~admin]", r"\[\~admin\]", id="mention"),
    pytest.param("h1. Pay now\n* one", "h1\\. Pay now\n\\* one", id="heading-and-list"),
    pytest.param("*bold* -gone- orders-api customer_id 30-40%", r"\*bold\* \-gone\- orders-api customer_id 30-40%",
                 id="effects-not-inside-words"),
])
def test_jira_text(text: str, shown: str) -> None:
    assert jira_text(text) == shown


@pytest.mark.parametrize(("text", "shown"), [
    pytest.param("[log in](https://evil.example)", r"\[log in\]\(https://evil.example\)", id="link"),
    pytest.param("<script>alert(1)</script>", r"&lt;script&gt;alert\(1\)&lt;/script&gt;", id="html"),
    pytest.param("**bold** _em_ `code`", r"\*\*bold\*\* \_em\_ \`code\`", id="emphasis"),
    pytest.param("- item\n1. first\nends.", "\\- item\n1\\. first\nends.", id="lists"),
    pytest.param("Payments are slow (p95 2 s) & retried", r"Payments are slow \(p95 2 s\) &amp; retried",
                 id="ordinary"),
])
def test_statuspage_text(text: str, shown: str) -> None:
    assert statuspage_text(text) == shown


def test_a_jira_ticket_shows_wiki_markup_as_typed(sandbox) -> None:
    from hooks.trackers import JiraTracker
    from prep_support.catalog import load_catalog
    from prep_support.reconcile import Ticket
    from prep_support.routing import load_routing

    call(sandbox.base_url, "DELETE", "/jira/_sandbox/issues")
    catalog = load_catalog()
    route = load_routing(catalog).route(next(s for s in catalog.services if s.id == "orders-api"))
    tracker = JiraTracker()
    ticket = tracker.create(dedup_key="orders-api/markup/availability", summary="Orders API down",
                            description=f"Evidence: {HOSTILE}", route=route)
    tracker.comment(ticket, "[prep-support orders-api/markup/availability #1]", f"Evidence: {HOSTILE}")
    tracker.comment(Ticket(ticket.key, ticket.id, ticket.url), "[prep-support orders-api/markup/availability #1]",
                    "again")  # the marker is still found: posted once
    [issue] = call(sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]
    texts = [issue["fields"]["description"], *(c["body"] for c in issue["comments"])]
    assert len(issue["comments"]) == 1
    for text in texts:
        assert r"\[log in\|https://evil.example/login\]" in text
        assert "[log in|" not in text and "!https://evil.example/x.png!" not in text and "{html}" not in text


def test_a_uat_sub_task_escapes_the_plans_text_and_keeps_its_own_markup() -> None:
    from prep_support import uat

    case = uat.UatCase(id="pay", title="Pay", steps=["Open [the portal|https://evil.example]", "Pay *now*"],
                       expected="{color:red}Paid{color}")
    text = uat.subtask_description(case, "alice", datetime(2030, 2, 28, 10, tzinfo=UTC))
    assert text.startswith("h3. Steps\n# Open \\[the portal\\|https://evil.example\\]\n# Pay \\*now\\*")
    assert "\\{color:red\\}Paid\\{color\\}" in text and "*Passed*" in text


def test_a_statuspage_incident_shows_markdown_and_html_as_typed(sandbox) -> None:
    from hooks.statuspage import StatuspageHook

    requests.delete(f"{sandbox.base_url}/statuspage/_sandbox/state", timeout=10).raise_for_status()
    hook = StatuspageHook()
    payments = hook.component_ids(["payments-api"])["payments-api"]
    body = "Log in at [our page](https://evil.example) <img src=x onerror=alert(1)> **now**"
    incident = hook.create_incident(key="outage/payments-api/markup", name="Payments are failing",
                                    status="investigating", body=body, impact="major",
                                    component_statuses={payments: "partial_outage"})
    hook.update_incident(incident["id"], status="resolved", body="Fixed - see [notes](https://evil.example)")
    state = requests.get(f"{sandbox.base_url}/statuspage/_sandbox/state", timeout=10).json()
    [shown] = [i for i in state["incidents"] if i["id"] == incident["id"]]
    bodies = [update["body"] for update in shown["incident_updates"]]
    assert bodies[0] == (r"Log in at \[our page\]\(https://evil.example\) &lt;img src=x onerror=alert\(1\)&gt; "
                         r"\*\*now\*\*")
    assert bodies[-1] == r"Fixed - see \[notes\]\(https://evil.example\)"
    requests.delete(f"{sandbox.base_url}/statuspage/_sandbox/state", timeout=10).raise_for_status()


def test_a_servicenow_work_note_shows_code_tags_as_typed(sandbox) -> None:
    from hooks.trackers import ServiceNowTracker
    from prep_support.catalog import load_catalog
    from prep_support.routing import load_routing

    call(sandbox.base_url, "DELETE", "/servicenow/_sandbox/incidents")
    catalog = load_catalog()
    route = load_routing(catalog).route(next(s for s in catalog.services if s.id == "payments-api"))
    tracker = ServiceNowTracker()
    ticket = tracker.create(dedup_key="payments-api/markup/availability", summary="Payments down",
                            description="down", route=route)
    tracker.comment(ticket, "[prep-support payments-api/markup/availability #1]",
                    "Evidence: [code]<a href='https://evil.example'>log in</a>[/code]")
    [incident] = call(sandbox.base_url, "GET", "/servicenow/_sandbox/incidents")["incidents"]
    shown = json.dumps(incident, ensure_ascii=False)
    assert "[\u200bcode]<a href='https://evil.example'>log in</a>[\u200b/code]" in shown
    assert "[code]" not in shown
    call(sandbox.base_url, "DELETE", "/servicenow/_sandbox/incidents")

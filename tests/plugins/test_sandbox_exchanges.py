"""The sandbox's exchange recorder and its "lost answer" fault, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from sandbox.jira import SANDBOX_PASSWORD, SANDBOX_USER
from sandbox.server import SandboxProcess
from tests.sandbox_client import call

pytestmark = pytest.mark.usefixtures("sandbox")


@pytest.fixture(autouse=True)
def no_faults(sandbox: SandboxProcess):
    call(sandbox.base_url, "DELETE", "/jira/_sandbox/issues")
    yield
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    call(sandbox.base_url, "DELETE", "/jira/_sandbox/issues")


def create_issue(sandbox: SandboxProcess, summary: str) -> requests.Response:
    return requests.post(f"{sandbox.base_url}/jira/rest/api/2/issue", auth=(SANDBOX_USER, SANDBOX_PASSWORD),
                         json={"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                                          "summary": summary}}, timeout=10)


def summaries(sandbox: SandboxProcess) -> list[str]:
    return [i["fields"]["summary"] for i in call(sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]]


def test_lost_answer_carries_the_request_out_and_closes_before_answering(sandbox: SandboxProcess) -> None:
    call(sandbox.base_url, "PUT", "/sandbox/faults/jira", {"lost_answer": True, "times": 1})

    with pytest.raises(requests.ConnectionError):
        create_issue(sandbox, "made, but nobody heard")

    assert summaries(sandbox) == ["made, but nobody heard"]  # the create happened
    journal = call(sandbox.base_url, "GET", "/sandbox/requests/jira")["requests"]
    assert journal[-1]["status"] == "lost (201)"
    assert create_issue(sandbox, "answered").status_code == 201  # times: 1, the next call is answered
    assert summaries(sandbox) == ["made, but nobody heard", "answered"]


def test_drop_never_reaches_the_stand_in(sandbox: SandboxProcess) -> None:
    call(sandbox.base_url, "PUT", "/sandbox/faults/jira", {"drop": True, "times": 1})

    with pytest.raises(requests.ConnectionError):
        create_issue(sandbox, "never made")

    assert summaries(sandbox) == []


def test_every_exchange_is_recorded_with_bodies_and_without_secrets(sandbox: SandboxProcess) -> None:
    created = create_issue(sandbox, "recorded").json()

    recorded = call(sandbox.base_url, "GET", "/sandbox/exchanges?system=jira")["exchanges"][-1]

    assert (recorded["method"], recorded["path"], recorded["status"]) == ("POST", "/jira/rest/api/2/issue", 201)
    assert recorded["request"]["headers"]["authorization"] == "<redacted>"
    assert recorded["request"]["body"]["json"]["fields"]["summary"] == "recorded"
    assert recorded["response"]["body"]["json"] == created
    assert SANDBOX_PASSWORD not in sandbox.exchanges_file.read_text()


def test_a_form_body_keeps_its_fields_but_not_its_secrets(sandbox: SandboxProcess) -> None:
    from sandbox import graph

    requests.post(f"{sandbox.base_url}/graph/login/{graph.TENANT_ID}/oauth2/v2.0/token", timeout=10,
                  data={"grant_type": "client_credentials", "client_id": graph.CLIENT_ID,
                        "client_secret": graph.CLIENT_SECRET, "scope": "https://graph.microsoft.com/.default"})

    recorded = call(sandbox.base_url, "GET", "/sandbox/exchanges?system=graph")["exchanges"][-1]

    assert ["client_secret", "<redacted>"] in recorded["request"]["body"]["form"]
    assert ["grant_type", "client_credentials"] in recorded["request"]["body"]["form"]
    assert graph.CLIENT_SECRET not in sandbox.exchanges_file.read_text()

"""The sandbox's SMTP server, driven by the SMTP provider's SmtpHook through ``smtp_default``."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from email.utils import make_msgid
from typing import Any

import pytest
import requests
from airflow.providers.smtp.hooks.smtp import SmtpHook

TIMEOUT = 10
RETRY_LIMIT = 2  # the sandbox connection's extra: SmtpHook tries a message 1 + 2 times


@pytest.fixture(autouse=True)
def _clean_mailbox(sandbox) -> Iterator[None]:
    requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/smtp/_sandbox/faults", timeout=TIMEOUT).raise_for_status()
    requests.delete(f"{sandbox.base_url}/smtp/_sandbox/messages", timeout=TIMEOUT).raise_for_status()
    yield
    requests.delete(f"{sandbox.base_url}/smtp/_sandbox/faults", timeout=TIMEOUT).raise_for_status()


def mailbox(sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox.base_url}/smtp/_sandbox/messages", timeout=TIMEOUT).json()["messages"]


def reject(sandbox, **plan: Any) -> None:
    requests.put(f"{sandbox.base_url}/smtp/_sandbox/faults", json=plan, timeout=TIMEOUT).raise_for_status()


def send(**kwargs: Any) -> None:
    message = {"to": "oncall@example.com", "subject": "payments-api is down", "html_content": "<p>Down</p>"}
    with SmtpHook(smtp_conn_id="smtp_default") as hook:
        hook.send_email_smtp(**{**message, **kwargs})


def test_smtp_connection_points_at_the_sandbox(sandbox) -> None:
    assert sandbox.smtp_port > 0
    assert json.loads(sandbox.connection_env()["AIRFLOW_CONN_SMTP_DEFAULT"]) == {
        "conn_type": "smtp", "host": "127.0.0.1", "port": sandbox.smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "prep-support@example.com",
                  "timeout": 10, "retry_limit": RETRY_LIMIT},
    }


def test_html_email_sent_through_smtp_hook_is_stored_parsed(sandbox) -> None:
    message_id = make_msgid(domain="prep-support.example.com")
    send(
        to=["oncall@example.com", "payments-lead@example.com"],
        cc="service-desk@example.com",
        bcc="audit@example.com",
        subject="[P1] payments-api is down",
        html_content="<h1>payments-api is down</h1><p>Since 10:00 UTC &amp; counting</p>",
        custom_headers={"Message-ID": message_id, "X-Prep-Support-Key": "payments-api/health/down"},
    )

    [stored] = mailbox(sandbox)
    assert stored["mail_from"] == "prep-support@example.com"
    assert stored["from"] == "prep-support@example.com"
    assert stored["to"] == ["oncall@example.com", "payments-lead@example.com"]
    assert stored["cc"] == ["service-desk@example.com"]
    # Bcc is in the envelope only, never in the headers.
    assert stored["rcpt_tos"] == ["oncall@example.com", "payments-lead@example.com", "service-desk@example.com",
                                  "audit@example.com"]
    assert "Bcc" not in stored["headers"]
    assert stored["subject"] == "[P1] payments-api is down"
    assert stored["message_id"] == message_id
    assert stored["headers"]["X-Prep-Support-Key"] == "payments-api/health/down"
    assert stored["html"] == "<h1>payments-api is down</h1><p>Since 10:00 UTC &amp; counting</p>"
    assert stored["text"] is None


def test_temporary_reject_within_the_retry_limit_is_retried_by_the_hook(sandbox) -> None:
    reject(sandbox, reject_next=1, code=451)
    send()
    assert len(mailbox(sandbox)) == 1


@pytest.mark.parametrize(
    ("at", "error"),
    [
        pytest.param("rcpt", smtplib.SMTPRecipientsRefused, id="rcpt"),
        pytest.param("data", smtplib.SMTPDataError, id="data"),
    ],
)
def test_451_reject_surfaces(sandbox, at: str, error: type[Exception]) -> None:
    reject(sandbox, reject_next=RETRY_LIMIT + 1, code=451, at=at)

    with pytest.raises(error, match="451"):
        send()

    assert mailbox(sandbox) == []
    plan = requests.get(f"{sandbox.base_url}/smtp/_sandbox/faults", timeout=TIMEOUT).json()["plan"]
    assert plan == {"reject_next": 0, "code": 451, "at": at}

"""Microsoft Teams stand-in: a Workflows ("When a Teams webhook request is received") webhook.

``POST /teams/webhook/{webhook_id}`` takes the message envelope Teams webhooks accept, an
Adaptive Card in ``attachments``:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
and answers ``202 Accepted`` with an empty body, as a Power Automate workflow trigger does.
Card schema and versions: https://adaptivecards.io/explorer/AdaptiveCard.html

A payload of the wrong shape is refused with 400 and the error shape of a Power Automate
request trigger whose schema does not match (``{"error": {"code": "TriggerInputSchemaMismatch",
"message": ...}}``), naming what is wrong. Workflows accept Adaptive Cards only, not the older
connector MessageCard. Any ``webhook_id`` is accepted; messages are stored under it.

For tests: ``GET /teams/_sandbox/messages`` (optionally ``?webhook_id=``) lists what was
posted, ``DELETE`` clears it.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

PREFIX = "/teams"
MESSAGE_TYPE = "message"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6")


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault, shaped like a Power Automate error."""
    return {"error": {"code": "InjectedFault", "message": f"Injected fault: HTTP {status}"}}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def shape_problem(payload: Any) -> str | None:
    """What is wrong with a webhook payload, or None when it is a message with Adaptive Cards."""
    if not isinstance(payload, dict):
        return "the body must be a JSON object"
    if payload.get("type") != MESSAGE_TYPE:
        return f"type must be {MESSAGE_TYPE!r}, got {payload.get('type')!r}"
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments must be a non-empty list"
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict):
            return f"{where} must be an object"
        if attachment.get("contentType") != ADAPTIVE_CARD:
            return f"{where}.contentType must be {ADAPTIVE_CARD!r}, got {attachment.get('contentType')!r}"
        problem = card_problem(attachment.get("content"), f"{where}.content")
        if problem:
            return problem
    return None


def card_problem(card: Any, where: str) -> str | None:
    """What is wrong with an Adaptive Card, or None."""
    if not isinstance(card, dict):
        return f"{where} must be an Adaptive Card object"
    if card.get("type") != "AdaptiveCard":
        return f"{where}.type must be 'AdaptiveCard', got {card.get('type')!r}"
    if card.get("version") not in CARD_VERSIONS:
        return f"{where}.version must be one of {', '.join(CARD_VERSIONS)}, got {card.get('version')!r}"
    body = card.get("body")
    if not isinstance(body, list):
        return f"{where}.body must be a list of elements"
    for index, element in enumerate(body):
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            return f"{where}.body[{index}] must be an element object with a 'type'"
    actions = card.get("actions", [])
    if not isinstance(actions, list) or any(not isinstance(a, dict) or "type" not in a for a in actions):
        return f"{where}.actions must be a list of action objects with a 'type'"
    return None


class Teams:
    """Messages posted to the sandbox's webhooks."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []


router = APIRouter(prefix=PREFIX, tags=["teams"])


def get_teams(request: Request) -> Teams:
    return request.app.state.teams


@router.post("/webhook/{webhook_id}", status_code=202)
async def post_message(request: Request, webhook_id: str) -> Response:
    """Accept a message with Adaptive Cards; 202 and an empty body, as a workflow trigger answers."""
    try:
        payload = json.loads(await request.body())
    except ValueError as error:
        return _error(400, "InvalidRequestContent",
                      f"The request content is not valid and could not be deserialized: {error}")
    problem = shape_problem(payload)
    if problem:
        return _error(400, "TriggerInputSchemaMismatch",
                      f"The input body for trigger 'manual' of type 'Request' did not match its schema: {problem}")
    run_id = secrets.token_hex(12)
    get_teams(request).messages.append({
        "webhook_id": webhook_id,
        "run_id": run_id,
        "received_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    })
    return Response(status_code=202, headers={"x-ms-workflow-run-id": run_id})


@router.get("/_sandbox/messages")
async def list_messages(request: Request, webhook_id: str | None = None) -> dict[str, Any]:
    """Messages posted, oldest first; only one webhook's with ``?webhook_id=``."""
    messages = get_teams(request).messages
    return {"messages": [m for m in messages if webhook_id is None or m["webhook_id"] == webhook_id]}


@router.delete("/_sandbox/messages")
async def clear_messages(request: Request) -> dict[str, Any]:
    """Forget every message."""
    get_teams(request).messages.clear()
    return {"cleared": True}

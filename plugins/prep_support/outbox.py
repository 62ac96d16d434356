"""Sending the outbox: each pending message once, in order, and recording what was sent.

Rows are sent in the order they were queued. An update or resolution goes into the thread
of its incident's first message on that channel; while that first message is unsent, the
later ones wait. A message that fails stays pending with its error and is tried again by the
next attempt; the sender then raises so the task is retried (after sending all it could).

Messages the outbox cannot carry (a report's chart is a file upload) are sent by their own
task but kept in the same ledger under their key: ``claim_direct`` looks the key up and writes
the row as ``sending`` (a status ``send_pending`` never picks up) before the upload, and
``record_sent`` marks it ``sent`` after it, so a retried or re-run task skips what was sent;
``send_once`` does the three around one send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select, update

from prep_support.schema import NotificationRow

notifications = NotificationRow.__table__
ROOT_EVENTS = ("opened", "flapping")
SENDING = "sending"  # a message its own task is sending (see claim_direct)


@dataclass(frozen=True)
class Sent:
    message_id: str
    thread_id: str | None = None


class Sender(Protocol):
    """Delivers one outbox row; ``root`` is the incident's first message on the channel, if any."""

    def send(self, message: Any, root: Any | None) -> Sent: ...


class SendFailures(RuntimeError):
    """Some messages could not be sent; they stay pending for the retry."""


def pending(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(
            select(notifications).where(notifications.c.status == "pending").order_by(notifications.c.id)
        ).all()


def send_pending(engine: Engine, senders: Mapping[str, Sender], now: datetime) -> dict[str, int]:
    sent = waiting = 0
    failures: list[str] = []
    for message in pending(engine):
        root = None
        if message.event not in ROOT_EVENTS and message.incident_id is not None:
            root = _root_of(engine, message)
            if root is not None and root.status != "sent":
                waiting += 1
                continue
        try:
            result = senders[message.channel].send(message, root)
        except Exception as error:  # noqa: BLE001 - recorded on the row and raised once all were tried
            failures.append(f"{message.key}: {type(error).__name__}: {error}")
            with engine.begin() as connection:
                connection.execute(update(notifications).where(notifications.c.id == message.id).values(
                    attempts=notifications.c.attempts + 1, last_error=f"{type(error).__name__}: {error}"[:2000]))
            continue
        with engine.begin() as connection:
            connection.execute(update(notifications).where(notifications.c.id == message.id).values(
                status="sent", message_id=result.message_id, thread_id=result.thread_id,
                attempts=notifications.c.attempts + 1, sent_at=now))
        sent += 1
    if failures:
        raise SendFailures(f"{len(failures)} message(s) not sent, left pending: " + "; ".join(failures[:5]))
    return {"sent": sent, "waiting": waiting}


def _root_of(engine: Engine, message: Any) -> Any | None:
    with engine.connect() as connection:
        return connection.execute(
            select(notifications).where(notifications.c.incident_id == message.incident_id,
                                        notifications.c.channel == message.channel,
                                        notifications.c.event.in_(ROOT_EVENTS))
            .order_by(notifications.c.id).limit(1)
        ).first()


def claim_direct(engine: Engine, *, key: str, event: str, channel: str, conn_id: str, target: str, subject: str,
                 body: str, now: datetime, requested_by: str | None = None) -> bool:
    """Record a message its task is about to send itself; False when the key was already sent.

    A row left ``sending`` by an attempt that failed (or died) is claimed again with the new content.
    """
    content = {"event": event, "channel": channel, "conn_id": conn_id, "target": target, "subject": subject,
               "body": body, "requested_by": requested_by}
    with engine.begin() as connection:
        status = connection.execute(select(notifications.c.status).where(notifications.c.key == key)).scalar()
        if status == "sent":
            return False
        if status is None:
            connection.execute(insert(notifications).values(key=key, incident_id=None, status=SENDING, attempts=0,
                                                            last_error="", created_at=now, **content))
        else:
            connection.execute(update(notifications).where(notifications.c.key == key).values(**content))
    return True


def record_sent(engine: Engine, key: str, sent: Sent, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(update(notifications).where(notifications.c.key == key).values(
            status="sent", message_id=sent.message_id, thread_id=sent.thread_id,
            attempts=notifications.c.attempts + 1, last_error="", sent_at=now))


def record_failure(engine: Engine, key: str, error: BaseException) -> None:
    with engine.begin() as connection:
        connection.execute(update(notifications).where(notifications.c.key == key).values(
            attempts=notifications.c.attempts + 1, last_error=f"{type(error).__name__}: {error}"[:2000]))


def send_once(engine: Engine, *, key: str, event: str, channel: str, conn_id: str, target: str, subject: str,
              body: str, send: Callable[[], Sent], now: datetime, requested_by: str | None = None) -> bool:
    """Send a message its task sends itself under ledger ``key`` unless it was sent; True if sent now.

    ``requested_by`` is who asked for it (the run's requester, prep_support.approvals), kept on the row.

    A failed ``send`` is recorded on the row and raised, so the retry claims and sends it again.
    """
    if not claim_direct(engine, key=key, event=event, channel=channel, conn_id=conn_id, target=target,
                        subject=subject, body=body, now=now, requested_by=requested_by):
        return False
    try:
        sent = send()
    except Exception as error:
        record_failure(engine, key, error)
        raise
    record_sent(engine, key, sent, now)
    return True

"""Answer human-in-the-loop steps while ``dag.test()`` runs, through Airflow's own REST route.

On Airflow 3.3 a HITL task parks in ``awaiting_input`` and ``dag.test()`` waits for a response
recorded from outside. :class:`HitlResponder` is that outside: a thread that finds each pending
request in the (shared) metadata database, asks the test what to answer, and sends the answer as
``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails`` to the
api-server's core app, in process, authenticated as the answering user. So the route's checks
apply as in production: a user not in ``assigned_users`` gets 403, an unknown option 400.

    with HitlResponder(lambda request: Answer("alice", ["approve"])) as responder:
        dag.test(run_conf=...)
    assert not responder.refusals

The callable may return None (leave it pending: asked again on the next poll), one Answer, or a
list of Answers tried in order (e.g. the wrong reviewer first, then the right one). Each request
is answered at most once; refusals (4xx) are kept in :attr:`refusals`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Answer:
    user: str
    chosen_options: list[str]
    params_input: dict[str, Any] = field(default_factory=dict)
    role: str = "user"  # SimpleAuthManager role of the answering user (viewer | user | op | admin)


@dataclass(frozen=True)
class PendingRequest:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    options: list[str]
    params: dict[str, Any]
    assigned_users: list[dict[str, str]]

    @property
    def assignees(self) -> list[str]:
        return [user["id"] for user in self.assigned_users]

    @property
    def path(self) -> str:
        return (f"/api/v2/dags/{quote(self.dag_id, safe='')}/dagRuns/{quote(self.run_id, safe='')}"
                f"/taskInstances/{quote(self.task_id, safe='')}/{self.map_index}/hitlDetails")


@dataclass(frozen=True)
class Refusal:
    request: PendingRequest
    answer: Answer
    status: int
    detail: str


Decide = Callable[[PendingRequest], "Answer | Sequence[Answer] | None"]


@cache
def _core_api() -> Any:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app(apps="core"))


def respond(request: PendingRequest, answer: Answer) -> tuple[int, Any]:
    """Send one answer through the REST route as ``answer.user``; (status code, JSON body)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    client = _core_api()  # creates the auth manager too
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=answer.user, role=answer.role))
    response = client.patch(request.path, headers={"Authorization": f"Bearer {token}"},
                            json={"chosen_options": answer.chosen_options, "params_input": answer.params_input})
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body


def pending_requests() -> list[PendingRequest]:
    """Every HITL request whose task waits for input and that has no response yet."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(HITLDetail, TaskInstance)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .where(TaskInstance.state == TaskInstanceState.AWAITING_INPUT, HITLDetail.responded_at.is_(None))
        ).all()
        return [
            PendingRequest(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index,
                           subject=detail.subject, body=detail.body, options=list(detail.options),
                           params=dict(detail.params or {}), assigned_users=list(detail.assignees or []))
            for detail, ti in rows
        ]


class HitlResponder:
    """A background thread answering pending HITL requests with ``decide`` (see the module doc)."""

    def __init__(self, decide: Decide, poll_s: float = 0.5) -> None:
        self.decide = decide
        self.poll_s = poll_s
        self.answered: list[tuple[PendingRequest, Answer]] = []
        self.refusals: list[Refusal] = []
        self.errors: list[BaseException] = []
        self._done: set[tuple[str, str, str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hitl-responder", daemon=True)

    def __enter__(self) -> HitlResponder:
        _core_api()  # build the app before the run starts, not while a task waits
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.errors and exc_info[0] is None:
            raise self.errors[0]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answer_pending()
            except Exception as error:  # noqa: BLE001 - surfaced on exit, the run must not hang silently
                self.errors.append(error)
                return
            self._stop.wait(self.poll_s)

    def answer_pending(self) -> None:
        for request in pending_requests():
            key = (request.dag_id, request.run_id, request.task_id, request.map_index)
            if key in self._done:
                continue
            decided = self.decide(request)
            if decided is None:
                continue
            self._done.add(key)
            for answer in [decided] if isinstance(decided, Answer) else list(decided):
                status, body = respond(request, answer)
                if status == 200:
                    self.answered.append((request, answer))
                    break
                self.refusals.append(Refusal(request, answer, status, str(body)))


@contextmanager
def triggered_by(user: str | None) -> Iterator[None]:
    """``dag.test()`` runs made inside record ``user`` as their triggering user, as the REST API records the
    token's user; None makes them like the scheduler's runs (no triggering user). dag.test() itself records
    ``dag_test``. tests/integration/test_distributed.py checks the real thing with FAB users."""
    import airflow.models.dagrun as dagrun_module
    import pytest

    create = dagrun_module.get_or_create_dagrun
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun",
                      lambda **kwargs: create(**{**kwargs, "triggering_user_name": user}))
        yield


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, poll_s: float = 0.2) -> None:
    """Poll until ``condition()`` holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s:.0f} s")
        time.sleep(poll_s)

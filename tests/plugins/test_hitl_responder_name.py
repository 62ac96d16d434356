"""Who answered a HITL step is the username, whichever auth manager recorded it."""

from __future__ import annotations

import pytest

from prep_support.hitl import responder


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param({"responded_by_user": {"id": "6", "name": "alice"}}, "alice", id="fab-numeric-id"),
        pytest.param({"responded_by_user": {"id": "alice", "name": "alice"}}, "alice", id="simple-auth"),
        pytest.param({"responded_by_user": None}, None, id="timeout-default"),
        pytest.param(None, None, id="nobody-asked"),
    ],
)
def test_responder_is_the_username(answer, expected) -> None:
    assert responder(answer) == expected

"""Who answered a human-in-the-loop step, as our records name people: their username.

Steps are assigned by username (``assigned_users=[{"id": "alice", "name": "alice"}]``). The
answer's ``responded_by_user`` carries the auth manager's user id and name: with the FAB auth
manager the id is a database number and the name the username; with the simple auth manager
both are the username. So the name is who answered; a timeout default has no responder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def responder(answer: Mapping[str, Any] | None) -> str | None:
    """The username that answered (``responded_by_user``'s name, else its id), or None."""
    user = (answer or {}).get("responded_by_user") or {}
    return user.get("name") or user.get("id") or None

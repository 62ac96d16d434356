"""Revoking what the review rejected, once per item, verified by reading the system again.

Each revocation is keyed ``campaign/item`` in ``access_remediations``. Before acting the row is
written ``started`` with the state read from the system (``before``); after acting the state is
read again (``after``) and the row is ``revoked`` when the access is gone (``verified``). An item
whose row is ``revoked`` or ``already_revoked`` is never touched again, so a retried, cleared or
re-run task revokes nothing twice; a ``started`` or ``failed`` row is tried again (the hooks check
the current state first, so a removal that did happen is found done, not repeated).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select

from prep_support.access.review import load_items
from prep_support.results import upsert
from prep_support.schema import AccessRemediationRow

remediations = AccessRemediationRow.__table__
DONE = ("revoked", "already_revoked")


class Target(Protocol):
    """One identity system as remediation sees it (adapters over OktaHook and DirectoryHook)."""

    def state(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """{"exists": bool, "enabled": bool, "groups": [names]} of the item's account."""

    def remove_group(self, item: Mapping[str, Any]) -> None: ...

    def disable(self, item: Mapping[str, Any]) -> None: ...


class RemediationFailed(RuntimeError):
    """Some revocations failed; they are recorded and the retry tries them (and only them) again."""


def revoked(item: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Is the access the item is about gone in this state?"""
    if not state.get("exists", True):
        return True
    if item["action"] == "disable_account":
        return not state["enabled"]
    return item["group_name"] not in state["groups"]


def plan(engine: Engine, campaign_id: str) -> list[dict[str, Any]]:
    """Items decided ``revoke`` whose revocation is not done yet."""
    done = {row.item_id for row in _rows(engine, campaign_id) if row.status in DONE}
    return [item for item in load_items(engine, campaign_id) if item["decision"] == "revoke"
            and item["item_id"] not in done]


def remediate(engine: Engine, campaign_id: str, targets: Mapping[str, Target], now: datetime) -> dict[str, int]:
    """Revoke every planned item; RemediationFailed (after trying all) when some could not be revoked."""
    counts = {"revoked": 0, "already_revoked": 0, "failed": 0}
    failures: list[str] = []
    for item in plan(engine, campaign_id):
        key = {"campaign_id": campaign_id, "item_id": item["item_id"], "action": item["action"]}
        target = targets.get(item["system"])
        try:
            if target is None:
                raise RuntimeError(f"no connection for system {item['system']!r}")
            before = target.state(item)
            if revoked(item, before):
                _record(engine, key, "already_revoked", before, before, True, "", now, now)
                counts["already_revoked"] += 1
                continue
            _record(engine, key, "started", before, {}, False, "", now, None)
            if item["action"] == "disable_account":
                target.disable(item)
            else:
                target.remove_group(item)
            after = target.state(item)
            verified = revoked(item, after)
            _record(engine, key, "revoked" if verified else "failed", before, after, verified,
                    "" if verified else "the access is still there after the revocation", now, now)
            if not verified:
                raise RuntimeError("the access is still there after the revocation")
            counts["revoked"] += 1
        except Exception as error:  # noqa: BLE001 - recorded per item; raised once all were tried
            counts["failed"] += 1
            failures.append(f"{campaign_id}/{item['item_id']} ({item['system']} {item['username']} "
                            f"{item['group_name'] or 'account'}): {type(error).__name__}: {error}")
            _record_failure(engine, key, f"{type(error).__name__}: {error}", now)
    if failures:
        raise RemediationFailed(f"{len(failures)} revocation(s) failed (recorded in access_remediations; the retry "
                                f"tries them again): " + "; ".join(failures[:5]))
    return counts


def _record(engine: Engine, key: dict[str, Any], status: str, before: dict[str, Any], after: dict[str, Any],
            verified: bool, error: str, started: datetime, finished: datetime | None) -> None:
    upsert(engine, remediations, [{**key, "status": status, "before": before, "after": after, "verified": verified,
                                   "error": error, "started_at": started, "finished_at": finished}],
           ["campaign_id", "item_id"])


def _record_failure(engine: Engine, key: dict[str, Any], error: str, now: datetime) -> None:
    existing = next((r for r in _rows(engine, key["campaign_id"]) if r.item_id == key["item_id"]), None)
    before = dict(existing.before) if existing is not None else {}
    after = dict(existing.after) if existing is not None else {}
    _record(engine, key, "failed", before, after, False, error[:2000], now, now)


def _rows(engine: Engine, campaign_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(remediations).where(remediations.c.campaign_id == campaign_id)))


def results(engine: Engine, campaign_id: str) -> list[dict[str, Any]]:
    """Each remediation with its item (for the evidence pack)."""
    items = {i["item_id"]: i for i in load_items(engine, campaign_id)}
    out = []
    for row in sorted(_rows(engine, campaign_id), key=lambda r: r.item_id):
        item = items.get(row.item_id, {})
        out.append({"item_id": row.item_id, "system": item.get("system"), "username": item.get("username"),
                    "display_name": item.get("display_name"), "group_name": item.get("group_name"),
                    "action": row.action, "status": row.status, "verified": row.verified, "before": row.before,
                    "after": row.after, "error": row.error, "decided_by": item.get("decided_by"),
                    "decided_at": item["decided_at"].isoformat() if item.get("decided_at") else None,
                    "started_at": row.started_at.isoformat(),
                    "finished_at": row.finished_at.isoformat() if row.finished_at else None})
    return out

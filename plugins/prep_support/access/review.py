"""Review items of a campaign: what is asked, of whom, and what was decided (by whom, when, why).

An item is one membership (revoking it removes the account from the group) or one account flagged
orphan or dormant (revoking it disables the account). Leavers still active are one item each,
decided by the policy's ``leaver_approvers`` (revoking disables), never by a reviewer packet.

Routing: an application's groups go to the application owner, everything else to the person's
manager (HR ``manager_id``). Nobody reviews their own access, and a reviewer who has left does not
review: such an item goes up the reviewer's manager chain, then to the policy's ``fallback``
reviewers (as do items with no manager: orphans, the top of the chart).

Decisions are written once per item (``decision IS NULL`` guards the update), so an item decided
before a run was killed is never asked again, and a late or repeated answer changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, delete, select, update

from prep_support.access.policy import Policy
from prep_support.schema import AccessReviewItemRow

if TYPE_CHECKING:
    import pandas as pd

items_table = AccessReviewItemRow.__table__
LEAVER_APPROVAL = "leaver_approval"
DEFAULT_RESPONDER = "default (response timeout)"
REVIEW_KINDS = ("privileged", "sod_conflict", "role_drift", "added")  # membership findings a reviewer sees
DECISIONS = ("keep", "revoke")


class DecisionError(ValueError):
    """An answer that cannot be recorded (wrong reviewer, own access, unknown decision)."""


def item_id(system: str, account_id: str, group: str) -> str:
    """Deterministic: the same membership (or account, group "") has the same id in every run of a campaign."""
    return hashlib.sha256(f"{system}\0{account_id}\0{group}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Route:
    reviewer: str
    routed_by: str


class Directory:
    """The HR roster as a directory of people: who manages whom, who has left."""

    def __init__(self, people: Iterable[Mapping[str, Any]]) -> None:
        self.by_employee = {p["employee_id"]: p for p in people}
        self.by_username = {p["username"]: p for p in self.by_employee.values() if p.get("username")}

    def manager_of(self, username: str) -> str | None:
        person = self.by_username.get(username)
        manager = self.by_employee.get(person.get("manager_id")) if person else None
        return manager.get("username") if manager else None

    def active(self, username: str) -> bool:
        person = self.by_username.get(username)
        return person is None or person.get("status") != "terminated"


def route(subject: str, candidate: str | None, routed_by: str, directory: Directory, policy: Policy) -> Route:
    """The reviewer of an item whose access belongs to ``subject``: the candidate, or up the chain from it."""
    seen: set[str] = set()
    reason = None
    while candidate is not None and candidate not in seen:
        if candidate == subject:
            reason = reason or "self-review"
        elif not directory.active(candidate):
            reason = reason or "reviewer left"
        else:
            return Route(candidate, f"escalated:{reason}" if reason else routed_by)
        seen.add(candidate)
        candidate = directory.manager_of(candidate)
    for fallback in policy.reviewers.fallback:
        if fallback != subject and directory.active(fallback):
            return Route(fallback, f"fallback:{reason or 'no manager'}")
    raise DecisionError(f"no one but {subject!r} can review their access: add a reviewer to reviewers.fallback")


def build_items(accounts: pd.DataFrame, memberships: pd.DataFrame, people: pd.DataFrame, findings: pd.DataFrame,
                policy: Policy) -> list[dict[str, Any]]:
    """Every item of the campaign, routed (rows for ``access_review_items``, undecided)."""
    from prep_support.access.findings import account_of, match_people

    directory = Directory(people.to_dict("records"))
    person_rows = match_people(accounts, people)
    person_records = people.to_dict("records")
    account_records = accounts.to_dict("records")
    flags: dict[tuple[str, str, str], list[str]] = {}
    for kind, system, account, group in findings[["kind", "system", "account_id", "group_name"]].itertuples(
            index=False, name=None):
        flags.setdefault((system, account, group), []).append(kind)

    def person_of(row: int) -> dict[str, Any] | None:
        return person_records[person_rows[row]] if person_rows[row] >= 0 else None

    def base(row: int, group: str, action: str, kinds: list[str]) -> dict[str, Any]:
        account, person = account_records[row], person_of(row)
        return {"item_id": item_id(account["system"], account["account_id"], group), "system": account["system"],
                "account_id": account["account_id"], "username": account["username"],
                "display_name": account.get("display_name") or "",
                "employee_id": person["employee_id"] if person else account.get("employee_id"),
                "subject": (person.get("username") if person else None) or account["username"],
                "group_name": group, "action": action, "kinds": sorted(set(kinds)), "decision": None,
                "decided_by": None, "decided_at": None, "comment": ""}

    def manager_route(item: dict[str, Any], row: int) -> Route:
        person = person_of(row)
        manager = directory.by_employee.get(person.get("manager_id")) if person else None
        return route(item["subject"], manager.get("username") if manager else None, "manager", directory, policy)

    items: list[dict[str, Any]] = []
    leavers: set[int] = set()
    for row, account in enumerate(account_records):
        kinds = [k for k in flags.get((account["system"], account["account_id"], ""), [])]
        if "leaver_active" in kinds:
            leavers.add(row)
            item = base(row, "", "disable_account", kinds)
            approvers = [a for a in policy.leaver_approvers if a != item["subject"]]
            items.append({**item, "reviewer": approvers[0] if approvers else policy.reviewers.fallback[0],
                          "routed_by": LEAVER_APPROVAL})
        elif kinds and account["enabled"]:  # orphan, dormant
            item = base(row, "", "disable_account", kinds)
            chosen = manager_route(item, row)
            items.append({**item, "reviewer": chosen.reviewer, "routed_by": chosen.routed_by})

    owners = account_of(memberships, accounts)
    from prep_support.access.findings import _Codes

    in_scope = _Codes(memberships, policy)
    scoped = in_scope.lookup(in_scope.scope_table())
    for position, (system, account, group) in enumerate(
            memberships[["system", "account_id", "group_name"]].itertuples(index=False, name=None)):
        row = owners[position]
        if row < 0 or not scoped[position] or row in leavers or not account_records[row]["enabled"]:
            continue
        kinds = [k for k in flags.get((system, account, group), []) if k in REVIEW_KINDS]
        if policy.review.items == "findings" and not kinds:
            continue
        item = base(row, group, "remove_group", kinds)
        application = policy.owner_of(system, group)
        if application is not None:
            chosen = route(item["subject"], application.owner, f"owner:{application.name}", directory, policy)
        else:
            chosen = manager_route(item, row)
        items.append({**item, "reviewer": chosen.reviewer, "routed_by": chosen.routed_by})
    return items


def store_items(engine: Engine, campaign_id: str, items: list[dict[str, Any]]) -> dict[str, int]:
    """Insert items not stored yet; a stored item (decided or not) is kept as it is (a re-run re-asks nothing)."""
    with engine.begin() as connection:
        existing = set(connection.execute(select(items_table.c.item_id).where(
            items_table.c.campaign_id == campaign_id)).scalars())
        new = [{"campaign_id": campaign_id, **item} for item in items if item["item_id"] not in existing]
        for first in range(0, len(new), 2000):
            connection.execute(items_table.insert(), new[first:first + 2000])
        # Items of access gone since the first try (e.g. revoked elsewhere) and still undecided are dropped.
        current = {item["item_id"] for item in items}
        stale = [i for i in existing - current]
        if stale:
            connection.execute(delete(items_table).where(items_table.c.campaign_id == campaign_id,
                                                         items_table.c.item_id.in_(stale),
                                                         items_table.c.decision.is_(None)))
    return {"items": len(items), "new": len(new)}


def load_items(engine: Engine, campaign_id: str, *, reviewer: str | None = None, leavers: bool | None = None,
               undecided: bool = False) -> list[dict[str, Any]]:
    query = select(items_table).where(items_table.c.campaign_id == campaign_id)
    if reviewer is not None:
        query = query.where(items_table.c.reviewer == reviewer)
    if leavers is not None:
        query = query.where((items_table.c.routed_by == LEAVER_APPROVAL) if leavers
                            else (items_table.c.routed_by != LEAVER_APPROVAL))
    if undecided:
        query = query.where(items_table.c.decision.is_(None))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query.order_by(
            items_table.c.username, items_table.c.system, items_table.c.group_name))]


def reviewers(engine: Engine, campaign_id: str) -> list[str]:
    """The reviewers of the campaign's packets, sorted (the mapped review tasks, one each)."""
    with engine.connect() as connection:
        return list(connection.execute(
            select(items_table.c.reviewer).where(items_table.c.campaign_id == campaign_id,
                                                 items_table.c.routed_by != LEAVER_APPROVAL)
            .distinct().order_by(items_table.c.reviewer)).scalars())


def record_decisions(engine: Engine, campaign_id: str, reviewer: str, answers: Mapping[str, Any],
                     responded_by: str | None, responded_at: datetime, comment: str = "") -> dict[str, int]:
    """Store a reviewer's answer: ``answers`` maps item id -> keep | revoke.

    ``responded_by`` None means the response timeout applied the defaults. Only the reviewer's own
    undecided items change; an answer from someone else, or about the responder's own access, is refused.
    """
    if responded_by is not None and responded_by != reviewer:
        raise DecisionError(f"{responded_by!r} answered the packet of {reviewer!r}; only the reviewer may")
    items = {i["item_id"]: i for i in load_items(engine, campaign_id, reviewer=reviewer)}
    unknown = sorted(set(answers) - set(items))
    if unknown:
        raise DecisionError(f"answers for items not in {reviewer!r}'s packet: {', '.join(unknown[:5])}")
    recorded = 0
    with engine.begin() as connection:
        for key, decision in answers.items():
            if decision not in DECISIONS:
                raise DecisionError(f"item {key}: decision {decision!r} is not keep or revoke")
            if responded_by is not None and items[key]["subject"] == responded_by:
                raise DecisionError(f"item {key}: {responded_by!r} cannot decide on their own access")
            recorded += connection.execute(
                update(items_table).where(and_(items_table.c.campaign_id == campaign_id,
                                               items_table.c.item_id == key, items_table.c.decision.is_(None)))
                .values(decision=decision, decided_by=responded_by or DEFAULT_RESPONDER, decided_at=responded_at,
                        comment=comment or "")
            ).rowcount
    return {"recorded": recorded, "already_decided": len(answers) - recorded}


def record_leaver_approval(engine: Engine, campaign_id: str, approved: bool, responded_by: str | None,
                           responded_at: datetime, comment: str = "") -> dict[str, int]:
    """Decide every undecided leaver item at once: approved -> revoke (disable), else keep."""
    items = load_items(engine, campaign_id, leavers=True, undecided=True)
    if responded_by is not None and any(item["subject"] == responded_by for item in items):
        raise DecisionError(f"{responded_by!r} is among the leavers and cannot approve their own offboarding")
    with engine.begin() as connection:
        recorded = connection.execute(
            update(items_table).where(items_table.c.campaign_id == campaign_id,
                                      items_table.c.routed_by == LEAVER_APPROVAL, items_table.c.decision.is_(None))
            .values(decision="revoke" if approved else "keep", decided_by=responded_by or DEFAULT_RESPONDER,
                    decided_at=responded_at, comment=comment or "")
        ).rowcount
    return {"recorded": recorded}


def apply_default(engine: Engine, campaign_id: str, default: str, now: datetime) -> int:
    """Close the review: every item still undecided gets the policy's default decision."""
    with engine.begin() as connection:
        return connection.execute(
            update(items_table).where(items_table.c.campaign_id == campaign_id, items_table.c.decision.is_(None))
            .values(decision=default, decided_by=DEFAULT_RESPONDER, decided_at=now)
        ).rowcount


# --- the reviewer's form ------------------------------------------------------------------------


def item_label(item: Mapping[str, Any]) -> str:
    what = f"group {item['group_name']}" if item["group_name"] else "the account itself"
    flags = f" [{', '.join(item['kinds'])}]" if item["kinds"] else ""
    return f"{item['system']} · {item['username']} ({item['display_name'] or 'no name'}) · {what}{flags}"


def form_params(items: list[Mapping[str, Any]], default: str) -> dict[str, dict[str, Any]]:
    """One keep/revoke field per item (keyed by item id) and a comment: kwargs of ``airflow.sdk.Param``."""
    fields: dict[str, dict[str, Any]] = {
        item["item_id"]: {"default": default, "type": "string", "enum": list(DECISIONS), "title": item_label(item),
                          "description": _description(item)}
        for item in items
    }
    fields["comment"] = {"default": "", "type": ["string", "null"], "title": "Comment (why)",
                         "description": "Kept with the decisions as the reason (auditors read it)."}
    return fields


def _description(item: Mapping[str, Any]) -> str:
    action = "removes the account from the group" if item["action"] == "remove_group" else "disables the account"
    return f"revoke {action}; routed by {item['routed_by']}"

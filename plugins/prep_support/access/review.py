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
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, select, update

from prep_support.access.policy import Policy
from prep_support.approvals import same_person
from prep_support.schema import AccessReviewItemRow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from prep_support.access.findings import _Codes

items_table = AccessReviewItemRow.__table__
LEAVER_APPROVAL = "leaver_approval"
DEFAULT_RESPONDER = "default (response timeout)"
REVIEW_KINDS = ("privileged", "sod_conflict", "role_drift", "added")  # membership findings a reviewer sees
DECISIONS = ("keep", "revoke")
ITEM_COLUMNS = ("item_id", "system", "account_id", "username", "display_name", "employee_id", "subject",
                "group_name", "action", "kinds", "decision", "decided_by", "decided_at", "comment", "reviewer",
                "routed_by")
STORED_COLUMNS = ("item_id", "system", "account_id", "username", "display_name", "employee_id", "subject",
                  "group_name", "action", "kinds", "reviewer", "routed_by", "comment")  # decisions start empty
STORE_CHUNK = 200_000  # items serialised and sent at a time: memory stays bounded on millions


class DecisionError(ValueError):
    """An answer that cannot be recorded (wrong reviewer, own access, unknown decision)."""


def item_id(system: str, account_id: str, group: str) -> str:
    """Deterministic: the same membership (or account, group "") has the same id in every run of a campaign."""
    return item_ids([system], [account_id], [group])[0]


def item_ids(systems: Iterable[str], account_ids: Iterable[str], groups: Iterable[str]) -> list[str]:
    """:func:`item_id` of each (system, account, group), without a function call per item (millions)."""
    sha256 = hashlib.sha256
    return [sha256(f"{system}\0{account}\0{group}".encode()).hexdigest()[:16]
            for system, account, group in zip(systems, account_ids, groups, strict=True)]


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
        if same_person(candidate, subject):
            reason = reason or "self-review"
        elif not directory.active(candidate):
            reason = reason or "reviewer left"
        else:
            return Route(candidate, f"escalated:{reason}" if reason else routed_by)
        seen.add(candidate)
        candidate = directory.manager_of(candidate)
    for fallback in policy.reviewers.fallback:
        if not same_person(fallback, subject) and directory.active(fallback):
            return Route(fallback, f"fallback:{reason or 'no manager'}")
    raise DecisionError(f"no one but {subject!r} can review their access: add a reviewer to reviewers.fallback")


def build_items(accounts: pd.DataFrame, memberships: pd.DataFrame, people: pd.DataFrame, findings: pd.DataFrame,
                policy: Policy) -> pd.DataFrame:
    """Every item of the campaign, routed: rows for ``access_review_items`` (columns :data:`ITEM_COLUMNS`, undecided).

    Flagged accounts come first, in account order, then memberships, in membership order. Computed over
    whole columns; the walk of :func:`route` runs once per distinct (subject, first candidate, routed_by),
    not once per item. Rows with the same findings share one ``kinds`` list: read it, never change it.
    """
    import numpy as np
    import pandas as pd

    from prep_support.access.findings import _Codes, account_of

    accounts = accounts.reset_index(drop=True)
    members = memberships.reset_index(drop=True)
    if accounts.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in ITEM_COLUMNS})
    holder = _holders(accounts, people)
    owner = account_of(members, accounts)  # row of `accounts` per membership, -1 when none
    codes = _Codes(members, policy)
    kind_names, account_bits, member_bits = _finding_bits(findings, accounts, codes, owner)

    leaver = (account_bits & _bit(kind_names, "leaver_active")) != 0
    enabled = accounts["enabled"].to_numpy(dtype=bool)
    flagged = np.flatnonzero(leaver | ((account_bits != 0) & enabled))  # leavers, orphans, dormant
    held = np.maximum(owner, 0)
    reviewed = (owner >= 0) & codes.lookup(codes.scope_table()) & ~leaver[held] & enabled[held]
    if policy.review.items == "findings":
        reviewed &= member_bits != 0
    positions = np.flatnonzero(reviewed)

    count = len(flagged) + len(positions)
    row = np.concatenate([flagged, owner[positions]])
    on_account = np.arange(count) < len(flagged)
    group = np.concatenate([np.full(len(flagged), "", dtype=object),
                            members["group_name"].to_numpy(dtype=object)[positions]])
    application = np.concatenate([np.full(len(flagged), -1, dtype=np.int64),
                                  _applications(codes, policy)[np.maximum(codes.system, 0), codes.group][positions]])
    reviewer, routed_by = _routes(holder["subject"], holder["manager"], row, leaver[row] & on_account,
                                  application, people, policy)
    system, account_id = (accounts[c].to_numpy(dtype=object)[row] for c in ("system", "account_id"))
    undecided = np.full(count, None, dtype=object)
    return pd.DataFrame({
        "item_id": np.array(item_ids(system, account_id, group), dtype=object),
        "system": system, "account_id": account_id,
        "username": accounts["username"].to_numpy(dtype=object)[row],
        "display_name": holder["display_name"][row], "employee_id": holder["employee_id"][row],
        "subject": holder["subject"][row], "group_name": group,
        "action": np.array(["remove_group", "disable_account"], dtype=object)[on_account.astype(np.int64)],
        "kinds": _kind_lists(np.concatenate([account_bits[flagged], member_bits[positions]]), kind_names),
        "decision": undecided, "decided_by": undecided, "decided_at": undecided,
        "comment": np.full(count, "", dtype=object), "reviewer": reviewer, "routed_by": routed_by,
    }, dtype=object, copy=False)  # one block per column, not one stacked copy of them all


def _holders(accounts: pd.DataFrame, people: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per account: whose access it is (the HR username, else the account's), their employee id, the
    display name ("" for none) and the username of their manager (None: no person, or no manager)."""
    import numpy as np
    import pandas as pd

    from prep_support.access.findings import _take, match_people

    person = match_people(accounts, people)  # row of `people` per account, -1 when none
    hr_username = _take(people["username"], person)
    manager_of_person = pd.Series(_take(people["username"], pd.Index(people["employee_id"]).get_indexer(
        people["manager_id"])), dtype=object)
    display_name = accounts["display_name"].to_numpy(dtype=object)
    return {
        "subject": np.where(_filled(hr_username), hr_username, accounts["username"].to_numpy(dtype=object)),
        "employee_id": np.where(person >= 0, _take(people["employee_id"], person),
                                accounts["employee_id"].to_numpy(dtype=object)),
        "display_name": np.where(_filled(display_name), display_name, ""),
        "manager": _take(manager_of_person, person),
    }


def _filled(values: np.ndarray) -> np.ndarray:
    """True where a text is neither None nor empty (what ``value or default`` keeps)."""
    import pandas as pd

    return (pd.Series(values, dtype=object).fillna("") != "").to_numpy(dtype=bool)


def _finding_bits(findings: pd.DataFrame, accounts: pd.DataFrame, codes: _Codes,
                  owner: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The findings as bit sets (bit k = ``kind_names[k]``, names sorted): per account, every kind found on
    the account itself (group ""); per membership, the kinds a reviewer sees (:data:`REVIEW_KINDS`)."""
    import numpy as np
    import pandas as pd

    from prep_support.access.findings import account_of

    kind_names = sorted(set(findings["kind"]))
    if len(kind_names) > 62:
        raise ValueError(f"{len(kind_names)} kinds of findings: at most 62 fit the bit sets")
    bits = np.left_shift(1, pd.Index(kind_names, dtype=object).get_indexer(findings["kind"]).astype(np.int64))
    on_account = (findings["group_name"] == "").to_numpy(dtype=bool)
    rows = account_of(findings.loc[on_account], accounts)
    account_bits = np.zeros(len(accounts), dtype=np.int64)
    np.bitwise_or.at(account_bits, rows[rows >= 0], bits[on_account][rows >= 0])

    reviewable = findings["kind"].isin(REVIEW_KINDS).to_numpy(dtype=bool)
    on_members = findings.loc[reviewable]
    keys = codes.membership_keys(account_of(on_members, accounts), codes.groups.get_indexer(on_members["group_name"]))
    known = keys >= 0
    distinct, which = np.unique(keys[known], return_inverse=True)
    distinct_bits = np.zeros(len(distinct), dtype=np.int64)
    np.bitwise_or.at(distinct_bits, which, bits[reviewable][known])
    member_keys = codes.membership_keys(owner, codes.group)
    found = pd.Index(distinct).get_indexer(member_keys)
    member_bits = np.where((found >= 0) & (member_keys >= 0), distinct_bits[np.maximum(found, 0)], 0) \
        if len(distinct) else np.zeros(len(owner), dtype=np.int64)
    return kind_names, account_bits, member_bits


def _bit(kind_names: list[str], kind: str) -> int:
    return 1 << kind_names.index(kind) if kind in kind_names else 0


def _kind_lists(bits: np.ndarray, kind_names: list[str]) -> np.ndarray:
    """The sorted kinds of each bit set, one list object per distinct set."""
    import numpy as np

    distinct, which = np.unique(bits, return_inverse=True)
    lists = np.empty(len(distinct), dtype=object)
    for position, value in enumerate(distinct.tolist()):
        lists[position] = [name for k, name in enumerate(kind_names) if value >> k & 1]
    return lists[which]


def _applications(codes: _Codes, policy: Policy) -> np.ndarray:
    """Per (system, group) code, the index of the application owning the group (-1: none), judged once each."""
    import numpy as np

    applications = policy.reviewers.applications
    table = np.full((len(codes.systems), len(codes.groups)), -1, dtype=np.int64)
    if applications:
        index = {id(application): position for position, application in enumerate(applications)}
        for s, system in enumerate(codes.systems):
            for g, group in enumerate(codes.groups):
                owning = policy.owner_of(system, group)
                table[s, g] = -1 if owning is None else index[id(owning)]
    return table


def _routes(subject: np.ndarray, manager: np.ndarray, row: np.ndarray, leaver: np.ndarray, application: np.ndarray,
            people: pd.DataFrame, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Reviewer and routed_by of each item (``row``: its account; ``application``: the owning application's
    index, -1 for the manager). Leavers go to the first leaver approver who is not the subject; every other
    item through :func:`route`, called once per distinct (subject, first candidate, routed_by) in the order
    the items come, so the first item no one can review is the one named."""
    import numpy as np
    import pandas as pd

    applications = policy.reviewers.applications
    subject_code, subjects = _codes_of(subject)
    manager_code, candidates = _codes_of(manager)
    candidates += [a.owner for a in applications]
    reasons = ["manager", *(f"owner:{a.name}" for a in applications)]
    candidate = np.where(application >= 0, len(candidates) - len(applications) + application, manager_code[row])
    request = (subject_code[row] * len(candidates) + candidate) * len(reasons) + application + 1

    reviewer = np.empty(len(row), dtype=object)
    routed_by = np.empty(len(row), dtype=object)
    routed = np.flatnonzero(~leaver)
    which, distinct = pd.factorize(request[routed])  # in order of first appearance
    directory = Directory(people.loc[:, ["employee_id", "manager_id", "status", "username"]].to_dict("records"))
    answers = [route(subjects[key // (len(candidates) * len(reasons))],
                     candidates[key // len(reasons) % len(candidates)], reasons[key % len(reasons)], directory, policy)
               for key in distinct.tolist()]
    reviewer[routed] = np.array([a.reviewer for a in answers], dtype=object)[which] if answers else []
    routed_by[routed] = np.array([a.routed_by for a in answers], dtype=object)[which] if answers else []

    leavers = np.flatnonzero(leaver)
    approver = {name: next((a for a in policy.leaver_approvers if not same_person(a, name)),
                           policy.reviewers.fallback[0])
                for name in set(subject[row[leavers]].tolist())}
    reviewer[leavers] = [approver[name] for name in subject[row[leavers]].tolist()]
    routed_by[leavers] = LEAVER_APPROVAL
    return reviewer, routed_by


def _codes_of(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of values, None included (the last code, when present): ``uniques[code]`` is the value."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    distinct = list(uniques)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(distinct), codes)
        distinct.append(None)
    return codes.astype(np.int64), distinct


def store_items(engine: Engine, campaign_id: str, items: pd.DataFrame) -> dict[str, int]:
    """Insert items not stored yet; a stored item (decided or not) is kept as it is (a re-run re-asks nothing).

    ``items`` are undecided (as :func:`build_items` returns them). Items of access gone since an earlier
    try (e.g. revoked elsewhere) and still undecided are dropped. New items go in a chunk at a time: with
    ``COPY`` on PostgreSQL, ``executemany`` on SQLite.
    """
    import numpy as np
    import pandas as pd

    for column in ("decision", "decided_by", "decided_at"):
        if column in items and items[column].notna().any():
            raise ValueError(f"items to store are undecided: field {column!r} is set (record_decisions decides)")
    with engine.begin() as connection:
        result = connection.execute(select(items_table.c.item_id).where(items_table.c.campaign_id == campaign_id))
        # The DBAPI's rows as they come: SQLAlchemy's row objects take 3x longer on millions of ids.
        existing = pd.Index([row[0] for row in result.cursor.fetchall()], dtype=object)
        result.close()
        stored_at = existing.get_indexer(pd.Index(items["item_id"], dtype=object)) if len(existing) else \
            np.full(len(items), -1)
        new = np.flatnonzero(stored_at < 0)
        chunks = [new[first:first + STORE_CHUNK] for first in range(0, len(new), STORE_CHUNK)]
        if connection.dialect.name == "postgresql":
            _copy_items(connection, campaign_id, items, chunks)
        else:
            for rows in chunks:
                _executemany_items(connection, campaign_id, items.iloc[rows])
        # Items of access gone since the first try (e.g. revoked elsewhere) and still undecided are dropped.
        current = np.zeros(len(existing), dtype=bool)
        current[stored_at[stored_at >= 0]] = True
        stale = existing[~current].tolist()
        for first in range(0, len(stale), 5000):
            connection.execute(delete(items_table).where(items_table.c.campaign_id == campaign_id,
                                                         items_table.c.item_id.in_(stale[first:first + 5000]),
                                                         items_table.c.decision.is_(None)))
    return {"items": len(items), "new": len(new)}


def _copy_items(connection: Connection, campaign_id: str, items: pd.DataFrame, chunks: list[np.ndarray]) -> None:
    """COPY the chunks of rows; the next chunk is serialised on another thread while PostgreSQL loads one."""
    from concurrent.futures import ThreadPoolExecutor

    from prep_support.access.snapshot import copy_csv

    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-items") as pool:
        serialised = pool.submit(_csv_lines, campaign_id, items.iloc[chunks[0]])
        for following in [*chunks[1:], None]:
            body = serialised.result()
            if following is not None:
                serialised = pool.submit(_csv_lines, campaign_id, items.iloc[following])
            copy_csv(connection, items_table.name, ("campaign_id", *STORED_COLUMNS), body)


def _csv_lines(campaign_id: str, chunk: pd.DataFrame) -> bytes:
    """CSV with every value quoted (an unquoted empty field is NULL, a quoted one the empty text), in item id
    order: the primary key's index then fills page after page instead of at random (a third faster)."""
    import numpy as np

    fields = [_distinct_map(chunk[column], _quoted, "") if column != "kinds" else
              _distinct_map(chunk[column].map(tuple), lambda kinds: _quoted(json.dumps(list(kinds))), "")
              for column in STORED_COLUMNS]
    order = np.argsort(chunk["item_id"].to_numpy(dtype=str), kind="stable")
    prefix = _quoted(campaign_id) + ","
    return "".join([prefix + ",".join(values) + "\n"
                    for values in zip(*(field[order] for field in fields), strict=True)]).encode()


def _executemany_items(connection: Connection, campaign_id: str, chunk: pd.DataFrame) -> None:
    values = [chunk[column].to_numpy(dtype=object) if column != "kinds" else
              _distinct_map(chunk[column].map(tuple), lambda kinds: json.dumps(list(kinds)), None)
              for column in STORED_COLUMNS]
    placeholders = ", ".join("?" * (len(STORED_COLUMNS) + 1))  # SQLite's paramstyle (qmark)
    connection.exec_driver_sql(f"INSERT INTO {items_table.name} (campaign_id, {', '.join(STORED_COLUMNS)}) "
                               f"VALUES ({placeholders})",
                               list(zip(itertools.repeat(campaign_id), *values)))


def _quoted(value: Any) -> str:
    return '"' + str(value).replace('"', '""') + '"'


def _distinct_map(series: pd.Series, convert: Callable[[Any], Any], missing: Any) -> np.ndarray:
    """``convert`` of each value, computed once per distinct value; ``missing`` where the value is None."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series.to_numpy(dtype=object))
    converted = np.empty(len(uniques) + 1, dtype=object)
    for position, value in enumerate(uniques):
        converted[position] = convert(value)
    converted[-1] = missing
    return converted[codes]


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
    if responded_by is not None and not same_person(responded_by, reviewer):
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
            if responded_by is not None and same_person(items[key]["subject"], responded_by):
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
    if responded_by is not None and any(same_person(item["subject"], responded_by) for item in items):
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

"""What a campaign finds in its population, computed with pandas over whole columns (no per-row loops).

Kinds (one row each, ``finding_id`` = ``kind:system:account_id:group``, group empty for an account):

- ``leaver_active``: the HR roster says terminated, the account is enabled.
- ``orphan``: an enabled account no one on the roster matches (by employee id, else by e-mail).
- ``dormant``: an enabled account with no login within ``dormancy_days`` of the campaign date (or never).
- ``privileged``: a membership of a privileged group.
- ``sod_conflict``: an account holding both groups of a separation-of-duty pair (one row per group).
- ``role_drift``: a membership the person's role template does not give (``extra``), or a template group
  the account lacks (``missing``; nothing to revoke, reported for the mover process).
- ``added`` / ``removed``: memberships that appeared or went since the previous campaign.

Memberships are matched to accounts and templates through integer codes (``pandas.Index.get_indexer``
and ``numpy.isin`` on int64 keys), which keeps 2,000,000 memberships within a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert, select

from prep_support.access.policy import Policy
from prep_support.schema import AccessFindingRow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FINDING_COLUMNS = ("finding_id", "kind", "system", "account_id", "group_name", "employee_id", "detail")
ACCOUNT_KINDS = ("leaver_active", "orphan", "dormant")
MEMBERSHIP_KINDS = ("privileged", "sod_conflict", "role_drift", "added", "removed")
KINDS = ACCOUNT_KINDS + MEMBERSHIP_KINDS


def compute_findings(accounts: pd.DataFrame, memberships: pd.DataFrame, people: pd.DataFrame, policy: Policy,
                     as_of: datetime, previous_memberships: pd.DataFrame | None = None) -> pd.DataFrame:
    """All findings of the population (frames as :mod:`prep_support.access.snapshot` normalises them)."""
    import numpy as np
    import pandas as pd

    accounts = accounts.reset_index(drop=True)
    person = match_people(accounts, people)  # row of `people` per account, -1 when none
    has_person = person >= 0
    status = _take(people["status"], person)
    role = _take(people["role"], person)
    employee = _take(people["employee_id"], person)
    enabled = accounts["enabled"].to_numpy(dtype=bool)

    parts: list[pd.DataFrame] = []
    account_cols = {"system": accounts["system"].to_numpy(), "account_id": accounts["account_id"].to_numpy()}

    def account_part(kind: str, mask: np.ndarray, detail: Any) -> None:
        detail = detail[mask] if isinstance(detail, np.ndarray) else detail
        parts.append(pd.DataFrame({"kind": kind, **{k: v[mask] for k, v in account_cols.items()}, "group_name": "",
                                   "employee_id": employee[mask], "detail": detail}))

    leaver = enabled & (status == "terminated")
    termination = _take(people["termination_date"], person).astype(str)
    account_part("leaver_active", leaver, np.char.add("terminated on ", termination.astype("U10")))
    account_part("orphan", enabled & ~has_person, "no one on the HR roster matches this account")
    last_login = pd.to_datetime(accounts["last_login"], utc=True)
    cutoff = pd.Timestamp(as_of) - timedelta(days=policy.dormancy_days)
    dormant = enabled & (last_login.isna() | (last_login < cutoff)).to_numpy()
    days = (pd.Timestamp(as_of) - last_login).dt.days.astype("Int64").astype(str).to_numpy(dtype="U12")
    never = last_login.isna().to_numpy()
    account_part("dormant", dormant, np.where(never, "never logged in",
                                              np.char.add(np.char.add("no login for ", days), " days")))

    members = memberships.reset_index(drop=True)
    owner = account_of(members, accounts)  # row of `accounts` per membership, -1 when none
    known = owner >= 0
    codes = _Codes(members, policy)
    in_scope = codes.lookup(codes.scope_table()) & known
    member_cols = {"system": members["system"].to_numpy(), "account_id": members["account_id"].to_numpy(),
                   "group_name": members["group_name"].to_numpy()}
    member_employee = np.where(known, employee[np.maximum(owner, 0)], None)

    def member_part(kind: str, mask: np.ndarray, detail: Any) -> None:
        detail = detail[mask] if isinstance(detail, np.ndarray) else detail
        parts.append(pd.DataFrame({"kind": kind, **{k: v[mask] for k, v in member_cols.items()},
                                   "employee_id": member_employee[mask], "detail": detail}))

    member_part("privileged", codes.lookup(codes.table(policy.privileged_pairs)) & in_scope, "privileged group")

    for pair in policy.sod_pairs:
        first, second = (codes.lookup(codes.table({(pair.system, g)})) & in_scope for g in pair.groups)
        both = np.intersect1d(owner[first], owner[second])
        conflict = (first | second) & _isin(owner, both)
        member_part("sod_conflict", conflict, f"holds both {pair.groups[0]} and {pair.groups[1]} ({pair.name})")

    judged = enabled & has_person & (status != "terminated")
    extra, missing = _role_drift(codes, owner, in_scope, accounts, role, judged, policy)
    member_part("role_drift", extra, "not in the role template (extra)")
    if missing is not None and len(missing):
        missing["employee_id"] = employee[missing.pop("account_row").to_numpy()]
        parts.append(missing.assign(kind="role_drift", detail="in the role template but not held (missing)"))

    if previous_memberships is not None:
        previous = previous_memberships.reset_index(drop=True)
        current_keys = codes.membership_keys(owner, codes.group)
        previous_owner = account_of(previous, accounts)
        previous_keys = codes.membership_keys(previous_owner, codes.groups.get_indexer(previous["group_name"]))
        member_part("added", ~_isin(current_keys, previous_keys), "added since the previous campaign")
        removed = (previous_keys < 0) | ~_isin(previous_keys, current_keys)
        parts.append(pd.DataFrame({"kind": "removed", "system": previous["system"].to_numpy()[removed],
                                   "account_id": previous["account_id"].to_numpy()[removed],
                                   "group_name": previous["group_name"].to_numpy()[removed], "employee_id": None,
                                   "detail": "removed since the previous campaign"}))

    findings = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS if c != "finding_id"})
    findings["finding_id"] = (findings["kind"] + ":" + findings["system"] + ":" + findings["account_id"] + ":"
                              + findings["group_name"])
    findings["employee_id"] = findings["employee_id"].astype(object).where(findings["employee_id"].notna(), None)
    return findings.loc[:, list(FINDING_COLUMNS)]


def match_people(accounts: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    """For each account, the row of ``people`` it belongs to: by employee id, else by e-mail (case-insensitive)."""
    import numpy as np
    import pandas as pd

    by_id = pd.Index(people["employee_id"]).get_indexer(accounts["employee_id"])
    emails = people["email"].str.lower()
    unique_emails = ~emails.duplicated(keep=False) & emails.notna()
    by_email = pd.Index(emails[unique_emails]).get_indexer(accounts["email"].str.lower())
    email_rows = np.flatnonzero(unique_emails.to_numpy())
    by_email = np.where(by_email >= 0, email_rows[np.maximum(by_email, 0)] if len(email_rows) else -1, -1)
    return np.where(by_id >= 0, by_id, by_email)


def account_of(memberships: pd.DataFrame, accounts: pd.DataFrame) -> np.ndarray:
    """For each membership, the row of ``accounts`` holding it (-1 for an account not in the snapshot)."""
    import numpy as np
    import pandas as pd

    result = np.full(len(memberships), -1, dtype=np.int64)
    # Factorise the membership side once (millions of rows), then look up only its distinct ids.
    codes, distinct = pd.factorize(memberships["account_id"])
    member_systems = memberships["system"].to_numpy()
    account_systems = accounts["system"].to_numpy()
    for system in pd.unique(accounts["system"]):
        rows = np.flatnonzero(account_systems == system)
        found = pd.Index(accounts["account_id"].to_numpy()[rows]).get_indexer(distinct)
        row_of_distinct = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
        mask = (member_systems == system) & (codes >= 0)
        result[mask] = row_of_distinct[codes[mask]]
    return result


def _isin(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """numpy.isin, faster: small non-negative integer keys through a bitmap, others through a pandas hash
    table (numpy builds a unique set first: 10x slower on millions of keys)."""
    import numpy as np
    import pandas as pd

    if values.dtype.kind == "i" and candidates.dtype.kind == "i" and len(values) and len(candidates):
        top = max(int(values.max()), int(candidates.max()))
        if top < 1 << 28:
            bitmap = np.zeros(top + 2, dtype=bool)
            bitmap[candidates[candidates >= 0]] = True
            return bitmap[np.where(values >= 0, values, top + 1)]
    return pd.Series(values, copy=False).isin(candidates).to_numpy()


def _take(series: pd.Series, rows: np.ndarray) -> np.ndarray:
    import numpy as np

    values = series.to_numpy(dtype=object)
    if not len(values):
        return np.full(len(rows), None, dtype=object)
    return np.where(rows >= 0, values[np.maximum(rows, 0)], None)


class _Codes:
    """Memberships as integer codes (system, group), and lookups of per-(system, group) facts by code."""

    def __init__(self, members: pd.DataFrame, policy: Policy) -> None:
        import numpy as np
        import pandas as pd

        self.policy = policy
        self.systems = pd.Index(sorted(policy.systems))
        self.system = self.systems.get_indexer(members["system"])  # -1: a system out of scope
        group, groups = pd.factorize(members["group_name"])
        template_groups = [r["group"] for r in policy.role_rows() if r["group"] not in set(groups)]
        self.groups = pd.Index(np.concatenate([np.asarray(groups, dtype=object),
                                               np.asarray(list(dict.fromkeys(template_groups)), dtype=object)]))
        self.group = group.astype(np.int64)

    def table(self, pairs: set[tuple[str, str]]) -> np.ndarray:
        """A (system x group) boolean table, True for the given pairs."""
        import numpy as np

        table = np.zeros((len(self.systems), len(self.groups)), dtype=bool)
        if pairs:
            systems, groups = zip(*pairs, strict=True)
            s, g = self.systems.get_indexer(list(systems)), self.groups.get_indexer(list(groups))
            table[s[(s >= 0) & (g >= 0)], g[(s >= 0) & (g >= 0)]] = True
        return table

    def scope_table(self) -> np.ndarray:
        """Which (system, group) the policy reviews: each pattern judged once per distinct group."""
        import numpy as np

        table = np.zeros((len(self.systems), len(self.groups)), dtype=bool)
        for s, system in enumerate(self.systems):
            scope = self.policy.systems[system]
            table[s] = True if scope.groups == ["*"] else [scope.in_scope(g) for g in self.groups]
        return table

    def lookup(self, table: np.ndarray) -> np.ndarray:
        import numpy as np

        known = self.system >= 0
        return known & table[np.maximum(self.system, 0), self.group]

    def membership_keys(self, owner: np.ndarray, group: np.ndarray) -> np.ndarray:
        """account row x group code as one int64 (-1 when either is unknown)."""
        import numpy as np

        return np.where((owner >= 0) & (group >= 0), owner.astype(np.int64) * len(self.groups) + group, -1)


def _role_drift(codes: _Codes, owner: np.ndarray, in_scope: np.ndarray, accounts: pd.DataFrame,
                role: np.ndarray, judged: np.ndarray, policy: Policy) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Memberships outside the holder's role template, and template groups the account lacks."""
    import numpy as np
    import pandas as pd

    roles = pd.Index(list(policy.roles))
    account_role = roles.get_indexer(pd.Series(role, dtype=object))  # -1: no role, or one without a template
    judged = judged & (account_role >= 0)
    if not len(roles) or not judged.any():
        return np.zeros(len(owner), dtype=bool), None
    allowed = np.stack([codes.table({(s, g) for s, groups in policy.roles[r].items() for g in groups})
                        for r in roles])  # role x system x group
    member_role = np.where(owner >= 0, account_role[np.maximum(owner, 0)], -1)
    judged_member = in_scope & (owner >= 0) & judged[np.maximum(owner, 0)] & (codes.system >= 0)
    granted = allowed[np.maximum(member_role, 0), np.maximum(codes.system, 0), codes.group]
    extra = judged_member & ~granted

    # Missing: an account holding fewer of its template's groups than the template has lacks some.
    account_system = codes.systems.get_indexer(accounts["system"])
    expected_count = np.where(judged & (account_system >= 0),
                              allowed.sum(axis=2)[np.maximum(account_role, 0), np.maximum(account_system, 0)], 0)
    held_count = np.bincount(owner[judged_member & granted], minlength=len(accounts))
    short = np.flatnonzero(held_count < expected_count)
    if not len(short):
        return extra, None
    templates = pd.DataFrame(policy.role_rows(), columns=["role", "system", "group"])
    holders = pd.DataFrame({"account_row": short, "role": role[short], "system": accounts["system"].to_numpy()[short]})
    expected = holders.merge(templates, on=["role", "system"])
    held = codes.membership_keys(owner, codes.group)[judged_member & granted]
    expected_keys = codes.membership_keys(expected["account_row"].to_numpy(),
                                          codes.groups.get_indexer(expected["group"]))
    lacking = expected.loc[~_isin(expected_keys, held)]
    rows = lacking["account_row"].to_numpy()
    return extra, pd.DataFrame({"system": lacking["system"].to_numpy(),
                                "account_id": accounts["account_id"].to_numpy()[rows],
                                "group_name": lacking["group"].to_numpy(), "account_row": rows})


def summarise(findings: pd.DataFrame) -> dict[str, int]:
    counts = findings["kind"].value_counts()
    return {kind: int(counts.get(kind, 0)) for kind in KINDS}


def store_findings(engine: Engine, campaign_id: str, findings: pd.DataFrame) -> int:
    """Replace the campaign's findings (a re-run computes the same ids)."""
    rows = findings.astype(object).where(findings.notna(), None).to_dict("records")
    with engine.begin() as connection:
        connection.execute(delete(AccessFindingRow).where(AccessFindingRow.campaign_id == campaign_id))
        for first in range(0, len(rows), 5000):
            connection.execute(insert(AccessFindingRow),
                               [{"campaign_id": campaign_id, **row} for row in rows[first:first + 5000]])
    return len(rows)


def load_findings(engine: Engine, campaign_id: str, kinds: Sequence[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    query = select(*[AccessFindingRow.__table__.c[c] for c in FINDING_COLUMNS]).where(
        AccessFindingRow.campaign_id == campaign_id).order_by(AccessFindingRow.finding_id)
    if kinds:
        query = query.where(AccessFindingRow.kind.in_(list(kinds)))
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).all(), columns=list(FINDING_COLUMNS))

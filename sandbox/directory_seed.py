"""The seeded identity population: one source of truth for the Okta sandbox, slapd and the HR roster.

38 people of Example Corp (``example.com``), as of 2026-11-28 (:data:`AS_OF`), plus three
accounts nobody in HR owns. Every case below is relied on by tests; change them only with those.

Organisation (manager chain up to the CEO):

- E1001 ``carol`` Carol Chen, CEO (no manager).
- E1002 ``alice`` Alice Martin, head of Support: **the manager reviewer**; manages E1010-E1019,
  E1051, E1052. E1004 ``dave`` Dave Ito, head of Engineering: manages E1003, E1020-E1029, E1040,
  E1041, E1050, E1053. E1005 ``erin`` Erin Novak, head of Finance: manages E1030-E1036.
- E1003 ``bob`` Bob Okafor, engineer: **the application-owner reviewer**, owner of the Okta app
  "Payments Hub" (groups ``payments-initiate`` and ``payments-approve``, AD group ``Payments``).
  E1002 ``alice`` owns the Okta app "Jira" (group ``jira-users``).

Known cases (system: okta, ad):

- **Leavers still active** (HR ``terminated``, an account enabled): E1015 ``ken`` (terminated
  2026-10-15; enabled in Okta and AD, groups kept), E1025 ``trent`` (2026-11-01; Okta deactivated,
  AD still enabled in ``Engineers``), E1033 ``beth`` (2026-11-15; Okta ACTIVE with
  ``payments-initiate``, AD disabled but still in ``Payments``). E1016 ``lena`` is a leaver done
  right (terminated 2026-09-30, deactivated and disabled, no groups): not a finding.
- **On leave**: E1017 ``mike`` (status ``leave``, accounts enabled).
- **Orphans** (no HR match): Okta ``svc-legacy-sync`` (no employee number; ``jira-users``);
  AD ``old.admin`` (no employeeID; ``Domain Admins``; last logon 2025-12-01, so dormant and
  privileged too); AD ``temp.contractor`` (employeeID E9999, not in HR; ``Engineers``).
- **Dormant** (last login more than 90 days before 2026-11-28): E1018 ``nora`` in both
  (Okta 2026-06-01, AD 2026-06-03); E1027 ``victor`` in AD only (2026-05-10); ``old.admin``.
- **Privileged** (Okta ``app-admins`` or AD ``Domain Admins``): E1040 ``fiona`` and E1041
  ``gus`` (role ``admin``), E1022 ``quinn`` (an engineer with an extra ``app-admins``),
  ``old.admin``.
- **Separation of duty** (``payments-initiate`` + ``payments-approve``): E1034 ``chuck`` in Okta.
- **Access differing from the role template**: E1012 ``heidi`` (Okta lacks ``jira-users``),
  E1022 ``quinn`` (extra ``app-admins``), E1034 ``chuck`` (extra ``payments-approve``),
  E1035 ``dina`` (``payments-approve`` instead of ``payments-initiate`` in Okta).
- **Hostile display name**: E1019 ``mallory``, displayed as ``<script>alert(1)</script> Mallory``.
- **Life-cycle subjects** (the ``user_lifecycle`` tests change them; they reset the seed after):
  E1050 ``nina`` (active engineer in HR, no accounts yet: a joiner), E1053 ``priya`` (active
  admin in HR, no accounts: a privileged joiner), E1051 ``omar`` (analyst with analyst access: a
  mover), E1052 ``liam`` (active, leaving on 2026-12-15: a leaver with analyst access).

Role templates (the access policy holds the authoritative copy; these build the seed):
``analyst`` okta [support-analysts, jira-users], ad [Support Analysts]; ``engineer`` okta
[engineers, jira-users], ad [Engineers]; ``payments-clerk`` okta [payments-initiate], ad
[Payments]; ``admin`` okta [app-admins], ad [Domain Admins].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

AS_OF = date(2026, 11, 28)
DOMAIN = "example.com"

ROLE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "analyst": {"okta": ("support-analysts", "jira-users"), "ad": ("Support Analysts",)},
    "engineer": {"okta": ("engineers", "jira-users"), "ad": ("Engineers",)},
    "payments-clerk": {"okta": ("payments-initiate",), "ad": ("Payments",)},
    "admin": {"okta": ("app-admins",), "ad": ("Domain Admins",)},
}
OKTA_GROUPS = ("support-analysts", "jira-users", "engineers", "payments-initiate", "payments-approve", "app-admins")
AD_GROUPS = ("Support Analysts", "Engineers", "Payments", "Domain Admins")
# Okta applications, the groups assigned to each, and the owner's username (for reviewer rules).
OKTA_APPS = (
    {"name": "jira", "label": "Jira", "groups": ("jira-users",), "owner": "alice"},
    {"name": "payments_hub", "label": "Payments Hub", "groups": ("payments-initiate", "payments-approve"),
     "owner": "bob"},
)


@dataclass(frozen=True)
class Person:
    """One HR roster row."""

    employee_id: str
    username: str
    name: str
    manager_id: str | None
    department: str
    role: str
    status: str = "active"
    termination_date: date | None = None

    @property
    def email(self) -> str:
        return f"{self.username}@{DOMAIN}"


@dataclass(frozen=True)
class SeedAccount:
    """One account in Okta or AD, as seeded."""

    system: str
    username: str
    display_name: str
    employee_id: str | None
    enabled: bool
    last_login: datetime | None
    groups: tuple[str, ...]
    manager: str | None = None
    email: str | None = field(default=None)


def _p(employee_id: str, username: str, name: str, manager_id: str | None, department: str, role: str,
       status: str = "active", termination_date: str | None = None) -> Person:
    ended = date.fromisoformat(termination_date) if termination_date else None
    return Person(employee_id, username, name, manager_id, department, role, status, ended)


PEOPLE: tuple[Person, ...] = (
    _p("E1001", "carol", "Carol Chen", None, "Executive", "analyst"),
    _p("E1002", "alice", "Alice Martin", "E1001", "Support", "analyst"),
    _p("E1003", "bob", "Bob Okafor", "E1004", "Engineering", "engineer"),
    _p("E1004", "dave", "Dave Ito", "E1001", "Engineering", "engineer"),
    _p("E1005", "erin", "Erin Novak", "E1001", "Finance", "payments-clerk"),
    _p("E1010", "frank", "Frank Moreau", "E1002", "Support", "analyst"),
    _p("E1011", "grace", "Grace Lindqvist", "E1002", "Support", "analyst"),
    _p("E1012", "heidi", "Heidi Schulz", "E1002", "Support", "analyst"),
    _p("E1013", "ivan", "Ivan Petrov", "E1002", "Support", "analyst"),
    _p("E1014", "judy", "Judy Park", "E1002", "Support", "analyst"),
    _p("E1015", "ken", "Ken Adams", "E1002", "Support", "analyst", "terminated", "2026-10-15"),
    _p("E1016", "lena", "Lena Horvat", "E1002", "Support", "analyst", "terminated", "2026-09-30"),
    _p("E1017", "mike", "Mike Brennan", "E1002", "Support", "analyst", "leave"),
    _p("E1018", "nora", "Nora Quist", "E1002", "Support", "analyst"),
    _p("E1019", "mallory", "<script>alert(1)</script> Mallory", "E1002", "Support", "analyst"),
    _p("E1020", "oscar", "Oscar Silva", "E1004", "Engineering", "engineer"),
    _p("E1021", "peggy", "Peggy Wu", "E1004", "Engineering", "engineer"),
    _p("E1022", "quinn", "Quinn Roberts", "E1004", "Engineering", "engineer"),
    _p("E1023", "rupert", "Rupert Hale", "E1004", "Engineering", "engineer"),
    _p("E1024", "sybil", "Sybil Grant", "E1004", "Engineering", "engineer"),
    _p("E1025", "trent", "Trent Olsen", "E1004", "Engineering", "engineer", "terminated", "2026-11-01"),
    _p("E1026", "uma", "Uma Rao", "E1004", "Engineering", "engineer"),
    _p("E1027", "victor", "Victor Lang", "E1004", "Engineering", "engineer"),
    _p("E1028", "wendy", "Wendy Cole", "E1004", "Engineering", "engineer"),
    _p("E1029", "xavier", "Xavier Dupont", "E1004", "Engineering", "engineer"),
    _p("E1030", "yara", "Yara Haddad", "E1005", "Finance", "payments-clerk"),
    _p("E1031", "zack", "Zack Miller", "E1005", "Finance", "payments-clerk"),
    _p("E1032", "amir", "Amir Karimi", "E1005", "Finance", "payments-clerk"),
    _p("E1033", "beth", "Beth Turner", "E1005", "Finance", "payments-clerk", "terminated", "2026-11-15"),
    _p("E1034", "chuck", "Chuck Nolan", "E1005", "Finance", "payments-clerk"),
    _p("E1035", "dina", "Dina Costa", "E1005", "Finance", "payments-clerk"),
    _p("E1036", "eli", "Eli Friedman", "E1005", "Finance", "payments-clerk"),
    _p("E1040", "fiona", "Fiona Walsh", "E1004", "Engineering", "admin"),
    _p("E1041", "gus", "Gus Ferreira", "E1004", "Engineering", "admin"),
    _p("E1050", "nina", "Nina Joiner", "E1004", "Engineering", "engineer"),
    _p("E1051", "omar", "Omar Mover", "E1002", "Support", "analyst"),
    _p("E1052", "liam", "Liam Leaver", "E1002", "Support", "analyst", "active", "2026-12-15"),
    _p("E1053", "priya", "Priya Admin", "E1004", "Engineering", "admin"),
)
PEOPLE_BY_ID = {person.employee_id: person for person in PEOPLE}
NOT_JOINED = {"E1050", "E1053"}  # in HR, no accounts yet


def _at(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).replace(hour=hour)


def _recent(index: int) -> datetime:
    """A recent, deterministic last login: 1 to 20 days before AS_OF."""
    day = AS_OF - timedelta(days=1 + index % 20)
    return datetime.combine(day, datetime.min.time(), UTC).replace(hour=8 + index % 9)


# Per-system differences from "enabled, recent login, the role template's groups".
OVERRIDES: dict[tuple[str, str], dict] = {
    ("okta", "E1012"): {"groups": ("support-analysts",)},
    ("okta", "E1016"): {"enabled": False, "groups": ()},
    ("ad", "E1016"): {"enabled": False, "groups": ()},
    ("okta", "E1018"): {"last_login": _at("2026-06-01")},
    ("ad", "E1018"): {"last_login": _at("2026-06-03")},
    ("okta", "E1022"): {"groups": ("engineers", "jira-users", "app-admins")},
    ("okta", "E1025"): {"enabled": False, "groups": ()},
    ("ad", "E1027"): {"last_login": _at("2026-05-10")},
    ("ad", "E1033"): {"enabled": False},
    ("okta", "E1034"): {"groups": ("payments-initiate", "payments-approve")},
    ("okta", "E1035"): {"groups": ("payments-approve",)},
}

ORPHANS: tuple[SeedAccount, ...] = (
    SeedAccount("okta", "svc-legacy-sync", "Legacy Sync Service", None, True, _at("2026-11-27"), ("jira-users",),
                email=f"svc-legacy-sync@{DOMAIN}"),
    SeedAccount("ad", "old.admin", "Old Admin", None, True, _at("2025-12-01"), ("Domain Admins",)),
    SeedAccount("ad", "temp.contractor", "Temp Contractor", "E9999", True, _at("2026-11-25"), ("Engineers",),
                email=f"temp.contractor@{DOMAIN}"),
)


def manager_username(person: Person) -> str | None:
    return PEOPLE_BY_ID[person.manager_id].username if person.manager_id else None


def accounts(system: str) -> list[SeedAccount]:
    """Every seeded account of ``system`` ("okta" or "ad"), people first, then orphans."""
    if system not in ("okta", "ad"):
        raise ValueError(f"unknown system {system!r}: okta or ad")
    seeded = []
    for index, person in enumerate(PEOPLE):
        if person.employee_id in NOT_JOINED:
            continue
        account = SeedAccount(
            system=system, username=person.username, display_name=person.name, employee_id=person.employee_id,
            enabled=True, last_login=_recent(index), groups=ROLE_TEMPLATES[person.role][system],
            manager=manager_username(person), email=person.email,
        )
        seeded.append(replace(account, **OVERRIDES.get((system, person.employee_id), {})))
    seeded.extend(orphan for orphan in ORPHANS if orphan.system == system)
    return seeded


def okta_id(prefix: str, name: str) -> str:
    """A stable 20-character Okta-style id (``00u...`` users, ``00g...`` groups, ``0oa...`` apps)."""
    return prefix + hashlib.sha1(name.encode()).hexdigest()[: 20 - len(prefix)]


HR_COLUMNS = ("employee_id", "email", "name", "manager_id", "department", "status", "termination_date", "role",
              "username")


def hr_rows() -> list[dict[str, str]]:
    """The HR roster as CSV rows (strings; empty for none), in :data:`HR_COLUMNS` order."""
    return [
        {"employee_id": p.employee_id, "email": p.email, "name": p.name, "manager_id": p.manager_id or "",
         "department": p.department, "status": p.status,
         "termination_date": p.termination_date.isoformat() if p.termination_date else "", "role": p.role,
         "username": p.username}
        for p in PEOPLE
    ]


def write_hr_csv(path) -> None:
    """Write the roster to ``path`` (``include/data/hr_roster.csv`` is this, checked by a test)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(hr_rows())


if __name__ == "__main__":
    import sys
    from pathlib import Path

    write_hr_csv(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "include/data/hr_roster.csv")

"""A small population with one of each finding, and a migrated SQLite support database per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

AS_OF = datetime(2026, 10, 1, 6, tzinfo=UTC)
RECENT = AS_OF - timedelta(days=3)

POLICY_YAML = """
systems:
  okta: {conn_id: okta_default, groups: ["*"]}
  ad: {conn_id: ldap_default, groups: ["*"]}
dormancy_days: 90
privileged:
  - {system: okta, group: app-admins}
sod_pairs:
  - {name: payments, system: okta, groups: [payments-initiate, payments-approve]}
roles:
  analyst: {okta: [support-analysts, jira-users], ad: [Support Analysts]}
  payments-clerk: {okta: [payments-initiate], ad: [Payments]}
  admin: {okta: [app-admins], ad: [Domain Admins]}
reviewers:
  applications:
    - name: Payments
      owner: bob
      groups: [{system: okta, pattern: "payments-*"}]
  fallback: [carol]
review: {default_decision: keep, response_timeout_hours: 48, reminder_hours_before: [24]}
leaver_approvers: [carol, bob]
"""


def person(employee_id, username, manager_id=None, status="active", role="analyst", termination_date=None,
           name=None):
    return {"employee_id": employee_id, "email": f"{username}@example.com", "name": name or username.title(),
            "manager_id": manager_id, "department": "Support", "status": status,
            "termination_date": termination_date, "role": role, "username": username}


def account(system, account_id, username, employee_id, enabled=True, last_login=RECENT, display_name=None):
    return {"system": system, "account_id": account_id, "username": username, "email": f"{username}@example.com",
            "display_name": display_name or username.title(), "enabled": enabled, "last_login": last_login,
            "employee_id": employee_id, "manager": None}


PEOPLE = [
    person("E1", "alice", role="admin"),                       # a manager
    person("E2", "bob", manager_id="E1", role="payments-clerk"),  # the Payments owner
    person("E3", "dave", manager_id="E1"),                     # analyst, fine
    person("E4", "erin", manager_id="E1", status="terminated", termination_date="2026-08-31"),  # leaver
    person("E5", "frank", manager_id="E1"),                    # dormant
    person("E6", "grace", manager_id="E2", role="payments-clerk"),  # SoD conflict
    person("E7", "heidi", manager_id="E1", name="<script>alert(1)</script>"),  # role drift (extra group)
    person("E8", "carol"),                                     # fallback reviewer
]
ACCOUNTS = [
    account("okta", "00u1", "alice", "E1"),
    account("okta", "00u2", "bob", "E2"),
    account("okta", "00u3", "dave", "E3"),
    account("okta", "00u4", "erin", "E4"),
    account("okta", "00u5", "frank", "E5", last_login=AS_OF - timedelta(days=120)),
    account("okta", "00u6", "grace", "E6"),
    account("okta", "00u7", "heidi", "E7", display_name="<script>alert(1)</script>"),
    account("okta", "00u9", "mallory", None),                  # orphan
    account("ad", "cn=dave", "dave", "E3"),
]
MEMBERSHIPS = [
    {"system": "okta", "account_id": "00u1", "group": "app-admins"},
    {"system": "okta", "account_id": "00u2", "group": "payments-initiate"},
    {"system": "okta", "account_id": "00u3", "group": "support-analysts"},
    {"system": "okta", "account_id": "00u3", "group": "jira-users"},
    {"system": "okta", "account_id": "00u4", "group": "support-analysts"},
    {"system": "okta", "account_id": "00u5", "group": "support-analysts"},
    {"system": "okta", "account_id": "00u5", "group": "jira-users"},
    {"system": "okta", "account_id": "00u6", "group": "payments-initiate"},
    {"system": "okta", "account_id": "00u6", "group": "payments-approve"},
    {"system": "okta", "account_id": "00u7", "group": "support-analysts"},
    {"system": "okta", "account_id": "00u7", "group": "jira-users"},
    {"system": "okta", "account_id": "00u7", "group": "engineers"},
    {"system": "okta", "account_id": "00u9", "group": "jira-users"},
    {"system": "ad", "account_id": "cn=dave", "group": "Support Analysts"},
]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    return path


@pytest.fixture
def policy(policy_file: Path):
    from prep_support.access.policy import load_policy

    return load_policy(policy_file)


@pytest.fixture
def frames():
    from prep_support.access.snapshot import accounts_frame, memberships_frame, people_frame

    return {"accounts": accounts_frame(ACCOUNTS, "accounts"), "memberships": memberships_frame(MEMBERSHIPS, "m"),
            "people": people_frame(PEOPLE)}


@pytest.fixture
def engine(tmp_path: Path):
    from sqlalchemy import create_engine

    from prep_support.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path / 'support.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()

"""Review items built over whole columns are the items the per-item loop built, and are stored the same way.

The oracle below is the loop ``build_items`` had before it was vectorised (kept only here): the ids are keys
of decisions already stored, so every field of every item, and their order, must stay as it was.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prep_support.access.findings import compute_findings
from prep_support.access.policy import Policy, load_policy
from prep_support.access.review import (
    LEAVER_APPROVAL,
    REVIEW_KINDS,
    DecisionError,
    Directory,
    build_items,
    item_id,
    load_items,
    record_decisions,
    route,
    store_items,
)
from prep_support.access.snapshot import accounts_frame, memberships_frame, people_frame
from sandbox import directory_seed as seed

ROOT = Path(__file__).resolve().parents[3]
AS_OF = datetime(2026, 10, 1, 6, tzinfo=UTC)


def loop_build_items(accounts, memberships, people, findings, policy) -> list[dict[str, Any]]:
    """The per-item loop build_items was (one dict per item): the oracle."""
    from prep_support.access.findings import _Codes, account_of, match_people

    directory = Directory(people.to_dict("records"))
    person_rows = match_people(accounts, people)
    person_records = people.to_dict("records")
    account_records = accounts.to_dict("records")
    flags: dict[tuple[str, str, str], list[str]] = {}
    for kind, system, account, group in findings[["kind", "system", "account_id", "group_name"]].itertuples(
            index=False, name=None):
        flags.setdefault((system, account, group), []).append(kind)

    def person_of(row):
        return person_records[person_rows[row]] if person_rows[row] >= 0 else None

    def base(row, group, action, kinds):
        account, person = account_records[row], person_of(row)
        return {"item_id": item_id(account["system"], account["account_id"], group), "system": account["system"],
                "account_id": account["account_id"], "username": account["username"],
                "display_name": account.get("display_name") or "",
                "employee_id": person["employee_id"] if person else account.get("employee_id"),
                "subject": (person.get("username") if person else None) or account["username"],
                "group_name": group, "action": action, "kinds": sorted(set(kinds)), "decision": None,
                "decided_by": None, "decided_at": None, "comment": ""}

    def manager_route(item, row):
        person = person_of(row)
        manager = directory.by_employee.get(person.get("manager_id")) if person else None
        return route(item["subject"], manager.get("username") if manager else None, "manager", directory, policy)

    items, leavers = [], set()
    for row, account in enumerate(account_records):
        kinds = list(flags.get((account["system"], account["account_id"], ""), []))
        if "leaver_active" in kinds:
            leavers.add(row)
            item = base(row, "", "disable_account", kinds)
            approvers = [a for a in policy.leaver_approvers if a != item["subject"]]
            items.append({**item, "reviewer": approvers[0] if approvers else policy.reviewers.fallback[0],
                          "routed_by": LEAVER_APPROVAL})
        elif kinds and account["enabled"]:
            item = base(row, "", "disable_account", kinds)
            chosen = manager_route(item, row)
            items.append({**item, "reviewer": chosen.reviewer, "routed_by": chosen.routed_by})
    owners = account_of(memberships, accounts)
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


def assert_same_items(frames: dict, policy: Policy, as_of: datetime) -> list[dict[str, Any]]:
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, as_of,
                                frames.get("previous"))
    args = (frames["accounts"], frames["memberships"], frames["people"], findings, policy)
    expected = loop_build_items(*args)
    built = build_items(*args).to_dict("records")
    assert len(built) == len(expected)
    for position, (item, wanted) in enumerate(zip(built, expected, strict=True)):
        assert item == wanted, f"item {position}"
    return built


# --- the seeded directory (the sandbox's Okta, slapd and HR roster) ----------------------------------------


def seed_frames() -> dict:
    accounts, memberships = [], []
    for system in ("okta", "ad"):
        for account in seed.accounts(system):
            email = account.email or f"{account.username}@{seed.DOMAIN}"
            account_id = seed.okta_id("00u", email) if system == "okta" else f"cn={account.username},ou=Users," \
                                                                               "dc=example,dc=com"
            accounts.append({"system": system, "account_id": account_id, "username": account.username,
                             "email": account.email, "display_name": account.display_name,
                             "enabled": account.enabled, "last_login": account.last_login,
                             "employee_id": account.employee_id, "manager": account.manager})
            memberships += [{"system": system, "account_id": account_id, "group": group} for group in account.groups]
    return {"accounts": accounts_frame(accounts, "accounts"), "memberships": memberships_frame(memberships, "m"),
            "people": people_frame(seed.hr_rows())}


@pytest.mark.parametrize("items", ["all", "findings"])
def test_seeded_directory_items_are_unchanged(items: str) -> None:
    raw = load_policy(ROOT / "include/config/access/policy.yaml").model_dump()
    policy = Policy.model_validate({**raw, "review": {**raw["review"], "items": items}})
    as_of = datetime.combine(seed.AS_OF, datetime.min.time(), UTC)
    built = assert_same_items(seed_frames(), policy, as_of)
    assert {i["routed_by"] for i in built} >= {"manager", "owner:Payments Hub", LEAVER_APPROVAL,
                                               *(["owner:Jira"] if items == "all" else [])}


# --- a generated population with every routing case ----------------------------------------------------------

OKTA_GROUPS = ("jira-users", "payments-initiate", "payments-approve", "app-admins", "engineers", "support-analysts",
               "legacy-tool")  # legacy-tool: out of scope
AD_GROUPS = ("Payments", "Domain Admins", "Engineers", "Support Analysts")


def generated_frames(size: int = 400, seed_value: int = 3) -> dict:
    """People with missing, unknown, self and cyclic managers, leavers, duplicate and missing HR usernames;
    accounts matched by employee id or e-mail, orphans, disabled and dormant ones; memberships in and out of
    scope, of unknown accounts; a previous campaign for the 'added' finding."""
    rng = random.Random(seed_value)
    people, accounts, memberships = [], [], []
    for i in range(size):
        username = None if i % 97 == 5 else (f"u{i - 1:03d}" if i % 89 == 7 else f"u{i:03d}")
        manager = rng.choices([None, f"E{9000 + i}", f"E{i:04d}", f"E{rng.randrange(max(i, 1)):04d}",
                               f"E{rng.randrange(size):04d}"], [8, 4, 3, 70, 15])[0]
        status = rng.choices(["active", "terminated", "leave"], [85, 12, 3])[0]
        people.append({"employee_id": f"E{i:04d}", "email": f"p{i}@example.com", "name": f"Person {i}",
                       "manager_id": manager, "department": "Ops", "status": status,
                       "termination_date": "2026-08-01" if status == "terminated" else None,
                       "role": rng.choice(["analyst", "engineer", "payments-clerk", "admin"]), "username": username})
        for system, groups, share in (("okta", OKTA_GROUPS, 0.9), ("ad", AD_GROUPS, 0.7)):
            if rng.random() > share:
                continue
            account_id = f"00u{i:05d}" if system == "okta" else f"cn=u{i},ou=Users"
            match = rng.choices(["id", "email", "orphan"], [90, 6, 4])[0]
            login = rng.choices([AS_OF - timedelta(days=2), AS_OF - timedelta(days=200), None], [85, 10, 5])[0]
            accounts.append({"system": system, "account_id": account_id, "username": username or f"acct{i}",
                             "email": f"p{i}@example.com" if match != "orphan" else f"x{i}@contractor.example",
                             "display_name": rng.choice([f"Person {i}", "", None]), "enabled": rng.random() < 0.92,
                             "last_login": login, "employee_id": f"E{i:04d}" if match == "id" else None,
                             "manager": None})
            memberships += [{"system": system, "account_id": account_id, "group": group}
                            for group in rng.sample(groups, rng.randint(0, 4))]
    for n in range(6):  # service accounts no one on the roster owns; one shares a person's username
        accounts.append({"system": "okta", "account_id": f"svc{n}", "username": "u020" if n == 0 else f"svc-{n}",
                         "email": None, "display_name": "Service", "enabled": True, "last_login": None,
                         "employee_id": None, "manager": None})
        memberships.append({"system": "okta", "account_id": f"svc{n}", "group": "jira-users"})
    memberships.append({"system": "okta", "account_id": "00u-unknown", "group": "jira-users"})
    frames = {"accounts": accounts_frame(accounts, "accounts"), "memberships": memberships_frame(memberships, "m"),
              "people": people_frame(people)}
    frames["previous"] = frames["memberships"].sample(frac=0.9, random_state=seed_value)
    return frames


def generated_policy(people, **review) -> Policy:
    terminated = people.loc[people["status"] == "terminated", "username"].dropna().tolist()
    return Policy.model_validate({
        "systems": {"okta": {"conn_id": "okta_default", "groups": ["jira-*", "payments-*", "app-*", "engineers",
                                                                   "support-*"]},
                    "ad": {"conn_id": "ldap_default"}},
        "privileged": [{"system": "okta", "group": "app-admins"}, {"system": "ad", "group": "Domain Admins"}],
        "sod_pairs": [{"name": "payments", "system": "okta", "groups": ["payments-initiate", "payments-approve"]}],
        "roles": {"analyst": {"okta": ["support-analysts", "jira-users"], "ad": ["Support Analysts"]},
                  "engineer": {"okta": ["engineers", "jira-users"], "ad": ["Engineers"]},
                  "payments-clerk": {"okta": ["payments-initiate"], "ad": ["Payments"]},
                  "admin": {"okta": ["app-admins"], "ad": ["Domain Admins"]}},
        "reviewers": {"applications": [
            {"name": "Payments", "owner": "u010", "groups": [{"system": "okta", "pattern": "payments-*"}]},
            {"name": "Jira", "owner": terminated[0], "groups": [{"system": "okta", "pattern": "jira-users"}]},
            {"name": "Ledger", "owner": "ghost", "groups": [{"system": "ad", "pattern": "Payments"}]},
        ], "fallback": [terminated[1], "u000", "auditor"]},
        "review": review,
        "leaver_approvers": [terminated[2], "u001"],
    })


@pytest.mark.parametrize("items", ["all", "findings"])
def test_generated_population_items_are_unchanged(items: str) -> None:
    frames = generated_frames()
    built = assert_same_items(frames, generated_policy(frames["people"], items=items), AS_OF)
    routed = {i["routed_by"] for i in built}
    if items == "all":  # the population reaches every way an item can be routed
        assert routed >= {"manager", "owner:Payments", "owner:Jira", "owner:Ledger", LEAVER_APPROVAL,
                          "escalated:self-review", "escalated:reviewer left", "fallback:no manager",
                          "fallback:self-review", "fallback:reviewer left"}
        assert {i["action"] for i in built} == {"remove_group", "disable_account"}
        assert any(i["display_name"] == "" for i in built) and any(i["employee_id"] is None for i in built)


def test_no_reviewer_left_is_the_same_error() -> None:
    frames = generated_frames(size=60)
    policy = generated_policy(frames["people"]).model_dump()
    policy["reviewers"]["fallback"] = [policy["reviewers"]["fallback"][0]]  # only someone who has left
    policy = Policy.model_validate(policy)
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, AS_OF)
    args = (frames["accounts"], frames["memberships"], frames["people"], findings, policy)
    with pytest.raises(DecisionError) as expected:
        loop_build_items(*args)
    with pytest.raises(DecisionError, match="add a reviewer to reviewers.fallback") as raised:
        build_items(*args)
    assert str(raised.value) == str(expected.value)  # the same first item no one can review


def test_empty_population_has_no_items(frames, policy) -> None:
    empty = {kind: frame.iloc[:0] for kind, frame in frames.items()}
    findings = compute_findings(empty["accounts"], empty["memberships"], empty["people"], policy, AS_OF)
    assert build_items(empty["accounts"], empty["memberships"], empty["people"], findings, policy).empty
    only_accounts = build_items(frames["accounts"], empty["memberships"], frames["people"],
                                compute_findings(frames["accounts"], empty["memberships"], frames["people"], policy,
                                                 AS_OF), policy)
    assert set(only_accounts["action"]) == {"disable_account"}


# --- storing: the same rows on SQLite and PostgreSQL, decisions kept, stale items dropped --------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, tmp_path):
    from sqlalchemy import create_engine

    from prep_support.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'support.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_store_keeps_decisions_adds_new_and_drops_stale_undecided(any_engine) -> None:
    frames = generated_frames(size=120)
    frames["accounts"].loc[0, "display_name"] = 'Comma, "quote"\nnew line'
    policy = generated_policy(frames["people"])
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, AS_OF)
    items = build_items(frames["accounts"], frames["memberships"], frames["people"], findings, policy)
    campaign = f"2026-Q{len(items) % 4 + 1}"
    first, later = items.iloc[:-5], items.iloc[5:]  # a re-run: 5 items gone, 5 new

    assert store_items(any_engine, campaign, first) == {"items": len(first), "new": len(first)}
    stored = {i["item_id"]: i for i in load_items(any_engine, campaign)}
    assert stored == {i["item_id"]: {"campaign_id": campaign, **i} for i in first.to_dict("records")}

    gone = first.iloc[:5].to_dict("records")
    decided = gone[0]
    record_decisions(any_engine, campaign, decided["reviewer"], {decided["item_id"]: "revoke"},
                     decided["reviewer"], AS_OF, "no longer needed")
    assert store_items(any_engine, campaign, later) == {"items": len(later), "new": 5}
    stored = {i["item_id"]: i for i in load_items(any_engine, campaign)}
    assert set(stored) == set(later["item_id"]) | {decided["item_id"]}  # a decided item is kept as evidence
    assert stored[decided["item_id"]]["decision"] == "revoke"
    assert store_items(any_engine, campaign, later)["new"] == 0  # a re-run adds nothing


def test_store_refuses_items_with_decisions(any_engine) -> None:
    frames = generated_frames(size=60)
    policy = generated_policy(frames["people"])
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, AS_OF)
    items = build_items(frames["accounts"], frames["memberships"], frames["people"], findings, policy)
    items.loc[items.index[0], "decision"] = "keep"
    with pytest.raises(ValueError, match="field 'decision' is set"):
        store_items(any_engine, "2026-Q4", items)

"""OktaHook against the sandbox's Okta Management API over real HTTP."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

import hooks.okta as okta_module
from hooks.http_client import HttpError
from hooks.okta import OktaHook
from sandbox import directory_seed as seed
from tests.sandbox_client import call


def journal(sandbox) -> list[dict]:
    return call(sandbox.base_url, "GET", "/sandbox/requests/okta")["requests"]


@pytest.fixture
def okta(sandbox):
    """The hook, with the sandbox org seeded afresh and no faults or tight limits left behind."""
    call(sandbox.base_url, "POST", "/okta/_sandbox/reset")
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    sandbox.okta_journal_start = len(journal(sandbox))
    yield OktaHook()
    call(sandbox.base_url, "DELETE", "/sandbox/faults")
    call(sandbox.base_url, "POST", "/okta/_sandbox/reset")


def requests_seen(sandbox) -> list[dict]:
    """The Okta API calls this test made (the journal keeps the last 2000 of the session)."""
    seen = journal(sandbox)
    assert len(seen) < 2000, "the sandbox journal wrapped: count calls differently"
    return seen[sandbox.okta_journal_start:]


def test_accounts_include_every_user_even_deactivated_ones(okta):
    accounts = {row["username"]: row for row in okta.accounts()}

    assert len(accounts) == len(seed.accounts("okta"))
    assert accounts["ken"]["enabled"] is True and accounts["ken"]["employee_id"] == "E1015"
    assert accounts["trent"]["enabled"] is False  # DEPROVISIONED: only a search lists it
    assert accounts["nora"]["last_login"] == datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert accounts["ken"]["manager"] == "alice"
    assert accounts["svc-legacy-sync"]["employee_id"] is None
    assert accounts["mallory"]["display_name"] == "<script>alert(1)</script> Mallory"
    assert set(accounts["ken"]) == {"system", "account_id", "username", "email", "display_name", "enabled",
                                    "last_login", "employee_id", "manager"}


def test_a_plain_listing_leaves_out_deprovisioned_users_as_okta_does(okta):
    logins = {user["profile"]["login"] for user in okta.iter_users()}

    assert "ken@example.com" in logins
    assert "trent@example.com" not in logins and "lena@example.com" not in logins


def test_listings_follow_every_next_link(okta, sandbox, monkeypatch):
    monkeypatch.setattr(okta_module, "PAGE_SIZE", 5)

    users = [row["account_id"] for row in okta.accounts()]

    assert len(users) == len(set(users)) == len(seed.accounts("okta"))
    pages = [r for r in requests_seen(sandbox) if r["path"] == "/okta/api/v1/users"]
    assert len(pages) == -(-len(users) // 5)
    assert all("after=" in r["query"] for r in pages[1:])


def test_memberships_and_app_assignments(okta):
    by_user = {row["account_id"]: row["username"] for row in okta.accounts()}
    pairs = Counter((by_user[m["account_id"]], m["group"]) for m in okta.memberships())
    apps = {entry["app"]["label"]: entry["users"] for entry in okta.iter_app_assignments()}

    assert sum(pairs.values()) == sum(len(a.groups) for a in seed.accounts("okta"))
    assert pairs[("chuck", "payments-initiate")] == pairs[("chuck", "payments-approve")] == 1
    assert pairs[("quinn", "app-admins")] == 1
    payments_logins = {u["credentials"]["userName"] for u in apps["Payments Hub"]}
    assert "beth@example.com" in payments_logins  # a leaver whose Okta account is still active
    assert all(u["scope"] == "GROUP" for u in apps["Payments Hub"])


def test_announced_rate_limit_is_waited_for_before_it_is_hit(okta, sandbox, monkeypatch):
    monkeypatch.setattr(okta_module, "PAGE_SIZE", 10)
    call(sandbox.base_url, "PUT", "/okta/_sandbox/rate_limit", {"limit": 2, "window_s": 1})

    users = [row["account_id"] for row in okta.accounts()]

    assert len(set(users)) == len(users) == len(seed.accounts("okta"))
    statuses = [r["status"] for r in requests_seen(sandbox)]
    assert 429 not in statuses, "X-Rate-Limit-Remaining: 0 should make the hook wait, not call"
    assert okta.rate_limit_waits, "four pages at two calls a second must wait at least once"


def test_a_429_is_waited_out_until_the_reset_and_nothing_is_lost(okta, sandbox, monkeypatch):
    monkeypatch.setattr(okta_module, "PAGE_SIZE", 10)
    # Without the remaining count the hook can only learn of the limit from a 429.
    call(sandbox.base_url, "PUT", "/okta/_sandbox/rate_limit", {"limit": 2, "window_s": 1, "announce": False})

    users = [row["account_id"] for row in okta.accounts()]

    assert len(set(users)) == len(users) == len(seed.accounts("okta"))
    assert 429 in [r["status"] for r in requests_seen(sandbox)]
    assert okta.rate_limit_waits and all(0 < wait <= 2.5 for wait in okta.rate_limit_waits)


def test_server_errors_during_a_listing_are_retried(okta, sandbox, monkeypatch):
    monkeypatch.setattr(okta_module, "PAGE_SIZE", 10)
    call(sandbox.base_url, "PUT", "/sandbox/faults/okta", {"status": 502, "every": 2, "times": 2})

    users = [row["account_id"] for row in okta.accounts()]

    assert len(set(users)) == len(users) == len(seed.accounts("okta"))
    assert [r["status"] for r in requests_seen(sandbox)].count(502) == 2


def test_create_user_is_idempotent_and_lifecycle_changes_only_once(okta, sandbox):
    created = okta.create_user(login="nina@example.com", email="nina@example.com", first_name="Nina",
                               last_name="Joiner", employee_id="E1050")
    again = okta.create_user(login="nina@example.com", email="nina@example.com", first_name="Nina",
                             last_name="Joiner", employee_id="E1050")

    assert again["id"] == created["id"]
    assert created["status"] == "PROVISIONED"  # activated without a password, as in Okta
    assert okta.find_user("nina@example.com")["profile"]["employeeNumber"] == "E1050"
    assert okta.find_user("nobody@example.com") is None

    first, second = okta.deactivate_user(created["id"]), okta.deactivate_user(created["id"])
    assert (first["changed"], first["status"]) == (True, "DEPROVISIONED")
    assert second["changed"] is False
    assert okta.activate_user(created["id"])["changed"] is True

    seen = requests_seen(sandbox)
    assert sum(r["method"] == "POST" and r["path"] == "/okta/api/v1/users" for r in seen) == 1
    assert sum(r["path"].endswith("/lifecycle/deactivate") for r in seen) == 1


def test_group_membership_changes_are_idempotent_and_read_back(okta, sandbox):
    ken = okta.find_user("ken@example.com")
    ids = okta.group_ids(["engineers", "support-analysts"])

    assert okta.add_to_group(ken["id"], ids["engineers"])["changed"] is True
    assert okta.add_to_group(ken["id"], ids["engineers"])["changed"] is False
    assert okta.remove_from_group(ken["id"], ids["support-analysts"])["changed"] is True
    assert okta.remove_from_group(ken["id"], ids["support-analysts"])["changed"] is False
    assert okta.user_group_names(ken["id"]) == {"engineers", "jira-users"}

    seen = requests_seen(sandbox)
    assert sum(r["method"] == "PUT" for r in seen) == 1
    assert sum(r["method"] == "DELETE" for r in seen) == 1
    state = {u["login"]: u for u in call(sandbox.base_url, "GET", "/okta/_sandbox/state")["users"]}
    assert state["ken@example.com"]["groups"] == ["engineers", "jira-users"]


def test_unknown_group_names_are_named(okta):
    with pytest.raises(ValueError, match="'no-such-group'"):
        okta.group_ids(["engineers", "no-such-group"])


def test_a_wrong_token_fails_with_oktas_error(sandbox, monkeypatch):
    import json
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_OKTA_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_OKTA_WRONG", json.dumps({**conn, "password": "not-the-token"}))

    with pytest.raises(HttpError, match="E0000011") as raised:
        list(OktaHook(okta_conn_id="okta_wrong").iter_groups())
    assert raised.value.status == 401
    assert "not-the-token" not in str(raised.value)

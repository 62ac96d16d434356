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


# --- OAuth 2.0 service app (private_key_jwt) ---------------------------------------------------------


@pytest.fixture(scope="module")
def app_key() -> str:
    from tests import okta_service_app

    return okta_service_app.private_key_pem()


def service_app_hook(sandbox, monkeypatch, pem: str, conn_id: str = "okta_service_app", **extra) -> OktaHook:
    from tests import okta_service_app

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", okta_service_app.connection(sandbox, pem, **extra))
    return OktaHook(okta_conn_id=conn_id)


def test_a_service_app_reads_and_changes_users_with_a_signed_assertion(okta, sandbox, monkeypatch, app_key):
    from tests import okta_service_app

    okta_service_app.register(sandbox.base_url, app_key)
    hook = service_app_hook(sandbox, monkeypatch, app_key)
    sent = []
    hook.session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))

    assert len(list(hook.accounts())) == len(seed.accounts("okta"))
    ken = hook.find_user("ken@example.com")
    assert hook.deactivate_user(ken["id"])["changed"] is True
    assert hook.test_connection() == (True, f"Listed users at {sandbox.base_url}/okta as service app "
                                            f"{okta_service_app.CLIENT_ID}")

    # Every API call carries the one access token of the run; none carries an API token.
    tokens = {request.headers["Authorization"] for request in sent if "/api/v1/" in request.url}
    assert len(tokens) == 1 and tokens.pop().startswith("Bearer ")
    assert call(sandbox.base_url, "GET", "/okta/_sandbox/state")["users"][0]["id"]  # the org answered
    assert next(u for u in call(sandbox.base_url, "GET", "/okta/_sandbox/state")["users"]
                if u["login"] == "ken@example.com")["status"] == "DEPROVISIONED"


def test_the_assertion_is_what_okta_asks_for(okta, sandbox, monkeypatch, app_key):
    import jwt
    import requests

    from tests import okta_service_app

    okta_service_app.register(sandbox.base_url, app_key)
    hook = service_app_hook(sandbox, monkeypatch, app_key)
    posted = []
    original = requests.Session.request

    def spy(session, method, url, **kwargs):
        if url.endswith("/oauth2/v1/token"):
            posted.append(kwargs["data"])
        return original(session, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    hook.find_user("ken@example.com")

    [form] = posted
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"].split() == list(okta_module.OAUTH_SCOPES)
    header = jwt.get_unverified_header(form["client_assertion"])
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert (header["alg"], header["kid"]) == ("RS256", okta_service_app.KEY_ID)
    assert claims["iss"] == claims["sub"] == okta_service_app.CLIENT_ID
    assert claims["aud"] == f"{sandbox.base_url}/okta/oauth2/v1/token"
    assert claims["exp"] - claims["iat"] == 300 and len(claims["jti"]) == 32


def test_a_key_the_app_does_not_have_is_refused_naming_the_connection(okta, sandbox, monkeypatch, app_key):
    from tests import okta_service_app

    okta_service_app.register(sandbox.base_url, okta_service_app.private_key_pem())  # another key registered
    hook = service_app_hook(sandbox, monkeypatch, app_key)

    with pytest.raises(HttpError) as raised:
        hook.find_user("ken@example.com")
    assert raised.value.status == 401
    message = str(raised.value)
    assert "Okta refused the service app 0oaprepsupportsvc of Connection 'okta_service_app'" in message
    assert "invalid_client" in message and "PRIVATE KEY" not in message


def test_scopes_are_enforced_per_call(okta, sandbox, monkeypatch, app_key):
    from tests import okta_service_app

    okta_service_app.register(sandbox.base_url, app_key, scopes=["okta.users.read", "okta.groups.read"])
    with pytest.raises(HttpError, match="invalid_scope.*okta.groups.manage okta.users.manage"):
        service_app_hook(sandbox, monkeypatch, app_key).find_user("ken@example.com")

    reader = service_app_hook(sandbox, monkeypatch, app_key, conn_id="okta_reader",
                              scopes=["okta.users.read", "okta.groups.read"])
    ken = reader.find_user("ken@example.com")
    with pytest.raises(HttpError) as raised:
        reader.deactivate_user(ken["id"])
    assert raised.value.status == 403 and "E0000006" in str(raised.value)


def test_a_connection_with_neither_token_nor_key_is_named(monkeypatch):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_OKTA_NOTHING", json.dumps({"conn_type": "http", "host": "acme.okta.com"}))
    with pytest.raises(ValueError, match="'okta_nothing' needs an Okta API token .* or an OAuth service app"):
        OktaHook(okta_conn_id="okta_nothing").find_user("x")
    monkeypatch.setenv("AIRFLOW_CONN_OKTA_HALF", json.dumps(
        {"conn_type": "http", "host": "acme.okta.com", "extra": {"client_id": "0oa1"}}))
    with pytest.raises(ValueError, match="'okta_half' names an Okta service app .* not its extra 'private_key'"):
        OktaHook(okta_conn_id="okta_half").find_user("x")

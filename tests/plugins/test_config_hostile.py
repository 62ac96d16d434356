"""Hostile config files: every loader refuses them at parse, naming the file, the line, the entry and the field.

One safe YAML reader serves every config file (prep_support.config_errors.parse_config); these cases
go through the real loaders (catalog, data-quality suite, access policy, routing, UAT plan) and
assert the message an analyst sees in the DAG's import error.
"""

from __future__ import annotations

import re
import time
import traceback
from pathlib import Path

import pytest

from prep_support.access.policy import PolicyError, load_policy
from prep_support.access.review import DecisionError, Directory, route
from prep_support.catalog import CatalogError, load_catalog
from prep_support.config_errors import ConfigError, parse_config
from prep_support.quality.config import SuiteError, load_suite, load_suites
from prep_support.routing import RoutingError, load_routing
from prep_support.uat import PlanError, load_plan
from tests.plugins.access.conftest import POLICY_YAML

KNOWN = {"estate_http", "estate_db"}

CATALOG = """\
services:
  - id: payments-api
    name: Payments API
    owner: payments@example.com
    team_channel: "#payments"
    tracker_project: PAY
    criticality: critical
    checks:
      - id: health
        kind: http
        conn_id: estate_http
        url: /health
  - id: orders-api
    name: Orders API
    owner: orders@example.com
    team_channel: "#orders"
    tracker_project: ORD
    criticality: high
    depends_on: [payments-api]
    checks:
      - id: volume
        kind: sql
        conn_id: estate_db
        query_file: orders_last_day.sql
        min: 1
"""

SUITE = """\
conn_id: estate_db
table: orders
partition_column: created_at
service: orders-api
checks:
  - expectation: expect_column_values_to_not_be_null
    kwargs: {column: customer_id}
"""

# Nine levels of nine aliases: 9**9 (387 million) values from a 700-byte file.
ALIAS_BOMB = "".join(
    [f"        json_path_equals:\n          $.a: &a0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"          $.a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]\n" for level in range(1, 9)])


def catalog_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "services.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(CatalogError) as raised:
        load_catalog(path, KNOWN)
    return str(raised.value)


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``fragment``."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if fragment in line]
    return hits[occurrence - 1]


# --- the YAML reader --------------------------------------------------------------------------------

def test_alias_bomb_is_refused_at_parse_with_its_line(tmp_path: Path) -> None:
    text = CATALOG.replace("        url: /health\n", "        url: /health\n" + ALIAS_BOMB)
    started = time.monotonic()
    message = catalog_error(tmp_path, text)
    assert time.monotonic() - started < 5
    assert message.startswith(f"{tmp_path / 'services.yaml'} (line ")
    assert "alias bomb" in message and "aliases expand to" in message
    line = int(re.search(r"\(line (\d+)\)", message)[1])
    assert line_of(text, "$.a1:") <= line <= line_of(text, "$.a8:")


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = CATALOG.replace("    depends_on: [payments-api]\n",
                           "    depends_on: [payments-api]\n    checks: []\n")
    message = catalog_error(tmp_path, text)
    first = line_of(text, "checks: []")
    assert message == (f"{tmp_path / 'services.yaml'} (line {first + 1}): duplicate key 'checks' "
                       f"(first at line {first}); YAML would keep only the last one")


def test_non_utf8_bytes_are_refused_with_file_and_line(tmp_path: Path) -> None:
    text = CATALOG.replace("Orders API", "Orders \udcff API").encode("utf-8", "surrogateescape")
    message = catalog_error(tmp_path, text)
    line = line_of(CATALOG, "name: Orders API")
    assert message == (f"{tmp_path / 'services.yaml'} (line {line}, column 18): byte 0xff is not UTF-8; "
                       "save the file as UTF-8")


def test_control_character_is_located_by_line_not_byte_position(tmp_path: Path) -> None:
    message = catalog_error(tmp_path, CATALOG.replace("Payments API", "Payments\x00API"))
    assert f"(line {line_of(CATALOG, 'name: Payments API')}, column 19)" in message
    assert "position" not in message


def test_python_tags_stay_refused(tmp_path: Path) -> None:
    message = catalog_error(tmp_path, CATALOG.replace("url: /health", "url: !!python/object/apply:os.system [id]"))
    assert f"(line {line_of(CATALOG, 'url: /health')}" in message
    assert "python/object/apply:os.system" in message


def test_impossible_date_value_is_located_not_a_bare_value_error(tmp_path: Path) -> None:
    message = catalog_error(tmp_path, CATALOG.replace("name: Payments API", "name: 2030-02-30"))
    assert f"(line {line_of(CATALOG, 'name: Payments API')}, column 11)" in message
    assert "'2030-02-30' cannot be read: day is out of range for month" in message


def test_oversized_and_recursive_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    with pytest.raises(ConfigError, match=r"x.yaml: 6,291,456 bytes is more than a config file may have"):
        parse_config(path, b"#" * (6 * 1024 * 1024))
    with pytest.raises(ConfigError, match=r"x.yaml \(line 2\): an alias refers to the entry that contains it"):
        parse_config(path, b"a: 1\nb: &b [*b]\n")
    with pytest.raises(ConfigError, match=r"x.yaml \(line 1\): nested deeper than 100 levels"):
        parse_config(path, b"[" * 150 + b"]" * 150)


def test_shared_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    data = parse_config(tmp_path / "x.yaml", b"base: &b {timeout_s: 2}\nhttp: {<<: *b, url: /x}\nother: *b\n")
    assert data == {"base": {"timeout_s": 2}, "http": {"timeout_s": 2, "url": "/x"}, "other": {"timeout_s": 2}}


# --- catalog cross-references and fields ----------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "anchor", "expected"), [
    pytest.param("- id: orders-api", "- id: payments-api", "- id: payments-api",
                 "services[1] (id 'payments-api') > field 'id': duplicate service id 'payments-api' "
                 "(first at services[0])", id="duplicate-service"),
    pytest.param("depends_on: [payments-api]", "depends_on: [payments-api, billing]", "depends_on:",
                 "services[1] (id 'orders-api') > depends_on[1]: depends on unknown service 'billing'; "
                 "the catalog has orders-api, payments-api", id="unknown-dependency"),
    pytest.param("depends_on: [payments-api]", "depends_on: [orders-api]", "depends_on:",
                 "services[1] (id 'orders-api') > field 'depends_on': 'orders-api' depends on itself; "
                 "each would be marked caused by the next", id="self-dependency"),
    pytest.param("    criticality: critical\n", "    criticality: critical\n    depends_on: [orders-api]\n",
                 "depends_on: [orders-api]",
                 "services[0] (id 'payments-api') > field 'depends_on': dependency cycle "
                 "payments-api -> orders-api -> payments-api", id="cycle"),
    pytest.param("owner: payments@example.com", "owner: payments team", "owner: payments team",
                 "services[0] (id 'payments-api') > field 'owner': 'payments team' is not an e-mail address",
                 id="owner-not-email"),
    pytest.param('team_channel: "#orders"', 'team_channel: "<!here>"', "<!here>",
                 "services[1] (id 'orders-api') > field 'team_channel': '<!here>' is not a Slack channel",
                 id="channel-ping"),
    pytest.param("min: 1", "min: .nan", "min: .nan",
                 "checks[0] (id 'volume') > field 'min': Input should be a finite number", id="nan-threshold"),
    pytest.param("min: 1", "max: .inf", "max: .inf",
                 "checks[0] (id 'volume') > field 'max': Input should be a finite number", id="inf-threshold"),
])
def test_catalog_errors_name_line_entry_and_field(tmp_path: Path, old: str, new: str, anchor: str,
                                                  expected: str) -> None:
    text = CATALOG.replace(old, new, 1)
    message = catalog_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'services.yaml'} (line {line_of(text, anchor, text.count(anchor))}): ")
    assert expected in message, message


def test_url_with_credentials_is_refused_without_echoing_the_secret(tmp_path: Path) -> None:
    text = CATALOG.replace("url: /health", "url: http://probe:s3cr3t-token@payments.internal/health")
    path = tmp_path / "services.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as raised:
        load_catalog(path, KNOWN)
    message = str(raised.value)
    assert message.startswith(f"{path} (line {line_of(text, 'url: http')}): services[0] (id 'payments-api') > "
                              "checks[0] (id 'health') > field 'url': holds credentials before 'payments.internal'")
    # What the DAG's import error shows: the whole traceback, chained exceptions included.
    assert "s3cr3t" not in "".join(traceback.format_exception(raised.value))


# --- data-quality suites ---------------------------------------------------------------------------

def suite_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "orders.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(SuiteError) as raised:
        load_suite(path, KNOWN)
    return str(raised.value)


def test_suite_duplicate_checks_key_no_longer_drops_the_first_list(tmp_path: Path) -> None:
    text = SUITE + "checks:\n  - expectation: expect_column_values_to_be_unique\n    kwargs: {column: id}\n"
    message = suite_error(tmp_path, text)
    assert message == (f"{tmp_path / 'orders.yaml'} (line 8): duplicate key 'checks' (first at line 5); "
                       "YAML would keep only the last one")


def test_suite_nan_bound_is_refused(tmp_path: Path) -> None:
    text = SUITE + ("  - expectation: expect_column_values_to_be_between\n"
                    "    kwargs: {column: amount, min_value: .nan}\n")
    message = suite_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'orders.yaml'} (line 9): checks[1]")
    assert "min_value" in message and "finite" in message, message


def test_suite_owner_must_be_an_email(tmp_path: Path) -> None:
    message = suite_error(tmp_path, SUITE + "owner: <!channel>\n")
    assert message.startswith(f"{tmp_path / 'orders.yaml'} (line 8): field 'owner': '<!channel>' is not an e-mail")


@pytest.mark.parametrize(("sql", "expected"), [
    pytest.param("DELETE FROM orders WHERE amount IS NULL", "must be a single SELECT", id="delete"),
    pytest.param("WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone", "must only read: it uses DELETE",
                 id="data-modifying-with"),
    pytest.param("SELECT * INTO copy_of_orders FROM orders", "must only read: it uses INTO", id="select-into"),
])
def test_custom_sql_that_is_not_a_single_select_is_refused_at_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sql: str, expected: str) -> None:
    from prep_support import paths

    (tmp_path / "sql" / "quality").mkdir(parents=True)
    (tmp_path / "sql" / "quality" / "bad.sql").write_text(sql)
    monkeypatch.setattr(paths, "SQL_DIR", tmp_path / "sql")
    message = suite_error(tmp_path, SUITE + "  - expectation: custom_sql\n    kwargs: {query_file: bad.sql}\n")
    assert message.startswith(f"{tmp_path / 'orders.yaml'} (line 9): checks[1] (id 'custom_sql.bad') > kwargs > "
                              "field 'query_file': ")
    assert expected in message, message


def test_custom_sql_select_with_strings_naming_writes_still_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prep_support import paths

    (tmp_path / "sql" / "quality").mkdir(parents=True)
    (tmp_path / "sql" / "quality" / "ok.sql").write_text(
        "-- rows whose note says 'DELETE me'\nSELECT id, replace(note, 'x', 'y') FROM orders WHERE note = 'DELETE me'")
    monkeypatch.setattr(paths, "SQL_DIR", tmp_path / "sql")
    path = tmp_path / "orders.yaml"
    path.write_text(SUITE + "  - expectation: custom_sql\n    kwargs: {query_file: ok.sql}\n")
    assert load_suite(path, KNOWN).checks[1].kwargs.query_file == "ok.sql"


# --- access policy and review ----------------------------------------------------------------------

def policy_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    return str(raised.value)


@pytest.mark.parametrize(("old", "new", "anchor", "expected"), [
    pytest.param("leaver_approvers:", "hr: {conn_id: hr_roster, tabel: people}\nleaver_approvers:", "tabel",
                 "hr > field 'tabel': unknown field (a typo?)", id="misspelt-hr-key"),
    pytest.param('okta: {conn_id: okta_default, groups: ["*"]}',
                 'okta: {conn_id: okta_default, groups: ["payments-*", "jira-*"]}', "group: app-admins}",
                 "privileged[0] (id 'app-admins') > field 'group': okta group 'app-admins' matches none of "
                 "systems > okta > groups (payments-*, jira-*): its members would never be reviewed",
                 id="privileged-outside-scope"),
    pytest.param("review: {", 'review: {channel: "<!here>", ', "review: {",
                 "review > field 'channel': '<!here>' is not a Slack channel", id="review-channel-ping"),
    pytest.param("response_timeout_hours: 48", "response_timeout_hours: .inf", "review: {",
                 "review > field 'response_timeout_hours': Input should be a finite number", id="inf-timeout"),
])
def test_policy_errors_name_line_entry_and_field(tmp_path: Path, old: str, new: str, anchor: str,
                                                 expected: str) -> None:
    assert old in POLICY_YAML
    text = POLICY_YAML.replace(old, new, 1)
    message = policy_error(tmp_path, text)
    line = line_of(text, anchor)
    assert message.startswith(f"{tmp_path / 'policy.yaml'} (line {line}): "), message
    assert expected in message, message


def test_policy_duplicate_key_and_bad_bytes_are_located(tmp_path: Path) -> None:
    text = POLICY_YAML + "dormancy_days: 30\n"
    assert policy_error(tmp_path, text).endswith(
        f"(line {line_of(text, 'dormancy_days: 30')}): duplicate key 'dormancy_days' "
        f"(first at line {line_of(text, 'dormancy_days: 90')}); YAML would keep only the last one")
    path = tmp_path / "policy.yaml"
    path.write_bytes(POLICY_YAML.replace("carol, bob", "carol, b\udce9b").encode("utf-8", "surrogateescape"))
    with pytest.raises(PolicyError, match=rf"\(line {line_of(POLICY_YAML, 'leaver_approvers')}, column 28\): "
                                          r"byte 0xe9 is not UTF-8"):
        load_policy(path)


def test_self_review_is_found_whatever_the_case_of_the_username(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    policy = load_policy(path)
    directory = Directory([{"employee_id": "E1", "username": "alice", "manager_id": None},
                           {"employee_id": "E2", "username": "Erin", "manager_id": "E1"}])
    # HR spells the manager 'Erin', the account is 'erin': the same person, who must not review it.
    routed = route("erin", "Erin", "manager", directory, policy)
    assert routed.reviewer == "alice" and routed.routed_by == "escalated:self-review"
    # The fallback reviewer 'carol' is the subject 'Carol': nobody else is left, and the run says so.
    with pytest.raises(DecisionError, match="no one but 'Carol' can review their access"):
        route("Carol", None, "manager", directory, policy)


# --- routing.yaml ----------------------------------------------------------------------------------

ROUTING = """\
support_channel: "#prep-support"
defaults:
  tracker: {system: jira}
  channels:
    slack: {}
services:
  payments-api:
    channels:
      slack: {channel: "#payments-alerts"}
      email:
        to: [payments-team@example.com]
"""


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("catalog") / "services.yaml"
    path.write_text(CATALOG)
    return load_catalog(path, KNOWN)


@pytest.mark.parametrize(("old", "new", "anchor", "expected"), [
    pytest.param("  payments-api:", "  payments-api:\n    tracker: {system: jira}\n  billing:", "  billing:",
                 "services > field 'billing': 'billing' is not a service in the catalog (orders-api, payments-api)",
                 id="unknown-service"),
    pytest.param('{channel: "#payments-alerts"}', '{channel: "<!channel>"}', "<!channel>",
                 "services > payments-api > channels > slack > field 'channel': '<!channel>' is not a Slack channel",
                 id="channel-ping"),
    pytest.param("[payments-team@example.com]", "[payments-team@example.com, oncall]", "to: [",
                 "channels > email > to[1]: 'oncall' is not an e-mail address", id="email"),
    pytest.param("defaults:", "thresholds: {regression_factor: .inf}\ndefaults:", "thresholds:",
                 "thresholds > field 'regression_factor': Input should be a finite number", id="inf-factor"),
    pytest.param("    slack: {}", "    slack: {chanel: '#x'}", "chanel",
                 "defaults > channels > slack > field 'chanel': unknown field (a typo?)", id="typo"),
])
def test_routing_errors_name_line_entry_and_field(tmp_path: Path, small_catalog, old: str, new: str, anchor: str,
                                                  expected: str) -> None:
    assert old in ROUTING
    text = ROUTING.replace(old, new, 1)
    path = tmp_path / "routing.yaml"
    path.write_text(text)
    with pytest.raises(RoutingError) as raised:
        load_routing(small_catalog, path)
    message = str(raised.value)
    assert message.startswith(f"{path} (line {line_of(text, anchor)}): "), message
    assert expected in message, message


def test_routing_with_latin1_bytes_names_file_and_line(tmp_path: Path, small_catalog) -> None:
    path = tmp_path / "routing.yaml"
    path.write_bytes(ROUTING.replace("# ", "").encode() + "# équipe paiements\n".encode("latin-1"))
    with pytest.raises(RoutingError) as raised:
        load_routing(small_catalog, path)
    assert str(raised.value) == f"{path} (line 12, column 3): byte 0xe9 is not UTF-8; save the file as UTF-8"


# --- UAT plans -------------------------------------------------------------------------------------

PLAN = """\
name: Checkout release
slack_channel: "#uat-testing"
testers: [alice, bob]
cases:
  - id: pay-by-card
    title: Pay by card
    steps: [Log in, Pay]
    expected: Paid
  - id: refund
    title: Refund
    steps: [Refund]
    expected: Refunded
    testers: [carol]
"""


def plan_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "release.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(PlanError) as raised:
        load_plan("release", tmp_path)
    return str(raised.value)


@pytest.mark.parametrize(("old", "new", "anchor", "expected"), [
    pytest.param("steps: [Refund]", "steps: []", "steps: []",
                 "cases[1] (id 'refund') > field 'steps': List should have at least 1 item", id="case-line"),
    pytest.param('slack_channel: "#uat-testing"', 'slack_channel: "<!everyone>"', "slack_channel",
                 "field 'slack_channel': '<!everyone>' is not a Slack channel", id="channel-ping"),
    pytest.param("testers: [carol]", "testers: [carol, Carol]", "testers: [carol, Carol]",
                 "cases[1] (id 'refund') > field 'testers': 'Carol' is listed twice (as 'carol'); usernames "
                 "ignore case", id="tester-twice"),
    pytest.param("    expected: Refunded\n", "    expected: Refunded\n    tester: [dave]\n", "tester: [dave]",
                 "cases[1] (id 'refund') > field 'tester': unknown field (a typo?)", id="typo"),
])
def test_plan_errors_name_line_case_and_field(tmp_path: Path, old: str, new: str, anchor: str, expected: str) -> None:
    text = PLAN.replace(old, new, 1)
    message = plan_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'release.yaml'} (line {line_of(text, anchor)}): "), message
    assert expected in message, message


def test_plan_with_non_utf8_bytes_is_a_plan_error_with_its_line(tmp_path: Path) -> None:
    message = plan_error(tmp_path, PLAN.replace("Pay by card", "Pay by c\udce4rd").encode("utf-8", "surrogateescape"))
    assert message == (f"{tmp_path / 'release.yaml'} (line 6, column 20): byte 0xe4 is not UTF-8; "
                       "save the file as UTF-8")


@pytest.mark.parametrize(("old", "new", "anchor", "expected"), [
    pytest.param("  - id: refund", "  - id: pay-by-card", "  - id: pay-by-card",
                 "cases[1] (id 'pay-by-card') > field 'id': duplicate case id 'pay-by-card'", id="uat-duplicate-case"),
    pytest.param("testers: [alice, bob]", "testers: [alice, bob, Alice]", "testers: [alice",
                 "field 'testers': 'Alice' is listed twice (as 'alice')", id="uat-plan-testers"),
])
def test_plan_duplicates_are_located_on_their_entry(tmp_path: Path, old: str, new: str, anchor: str,
                                                    expected: str) -> None:
    text = PLAN.replace(old, new, 1)
    message = plan_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'release.yaml'} (line {line_of(text, anchor, text.count(anchor))}): ")
    assert expected in message, message


def test_catalog_duplicate_check_is_located_on_its_entry(tmp_path: Path) -> None:
    text = CATALOG.replace("      - id: volume", "      - id: volume\n        kind: tcp\n        host: db\n"
                           "        port: 5432\n      - id: volume")
    message = catalog_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'services.yaml'} (line {line_of(text, '- id: volume', 2)}): "
                              "services[1] (id 'orders-api') > checks[1] (id 'volume') > field 'id': "
                              "duplicate check id 'volume'"), message


def test_policy_lists_a_person_once_whatever_the_case(tmp_path: Path) -> None:
    text = POLICY_YAML.replace("leaver_approvers: [carol, bob]", "leaver_approvers: [carol, bob, Carol]")
    message = policy_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'policy.yaml'} (line {line_of(text, 'leaver_approvers')}): "
                              "field 'leaver_approvers': 'Carol' is listed twice (as 'carol'); "
                              "usernames ignore case"), message


def test_asset_uri_with_credentials_is_refused_without_echoing_them(tmp_path: Path) -> None:
    message = suite_error(tmp_path, SUITE + "schedule_on_asset: postgres://etl:hunter2@db:5432/shop/public/orders\n")
    assert message == (f"{tmp_path / 'orders.yaml'} (line 8): field 'schedule_on_asset': holds credentials "
                       "(user:password@): an asset URI names the data, not how to log in")


def test_a_suite_id_used_twice_is_located_on_the_second_files_id(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: orders\n" + SUITE)
    (tmp_path / "b.yaml").write_text("# the same dataset again\nid: orders\n" + SUITE)
    suites, errors = load_suites(tmp_path, KNOWN)
    assert [suite.id for suite in suites] == ["orders"]
    assert [str(error) for error in errors] == [
        f"{tmp_path / 'b.yaml'} (line 2): field 'id': suite id 'orders' is already used by {tmp_path / 'a.yaml'}"]


def test_how_to_config_refuses_a_repeated_key_with_both_lines(tmp_path: Path) -> None:
    from prep_support.how_to import HowToConfigError, load_how_to_config

    path = tmp_path / "how_to.yaml"
    path.write_text("search:\n  min_coverage: 0.5\nsynonyms:\n  - [password, passphrase]\nsearch:\n  suggestions: 2\n")
    with pytest.raises(HowToConfigError) as raised:
        load_how_to_config(path)
    assert str(raised.value) == (f"{path} (line 5): duplicate key 'search' (first at line 1); "
                                 "YAML would keep only the last one")

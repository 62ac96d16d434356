"""DirectoryHook against a real OpenLDAP slapd carrying the AD attributes (tests/conftest.py ``slapd``)."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime

import pytest
import yaml

from hooks.directory import DirectoryHook, default_mapping_file, from_filetime, load_mapping, to_filetime
from sandbox import directory_seed as seed


@pytest.fixture
def directory(slapd):
    """The hook on the seeded directory; whatever a test changed is seeded again afterwards."""
    yield DirectoryHook()
    slapd.reset()


def hook_with(monkeypatch, slapd, tmp_path, name: str, mapping: dict | None = None, **extra) -> DirectoryHook:
    """A hook on its own Connection (other page size, another mapping file)."""
    conn = slapd.connection()
    if mapping is not None:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(mapping))
        extra["mapping_file"] = str(path)
    conn["extra"] = {**conn["extra"], **extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps(conn))
    return DirectoryHook(ldap_conn_id=name, sleep=lambda _s: None)


def default_mapping() -> dict:
    return yaml.safe_load(default_mapping_file().read_text())


@pytest.mark.parametrize("moment, filetime", [
    pytest.param(datetime(1601, 1, 1, tzinfo=UTC), 0, id="epoch"),
    pytest.param(datetime(2021, 1, 1, tzinfo=UTC), 132_539_328_000_000_000, id="2021"),
    pytest.param(datetime(2026, 6, 3, 9, 0, 0, 123456, tzinfo=UTC), 134_249_508_001_234_560, id="microseconds"),
])
def test_windows_file_time_both_ways(moment, filetime):
    assert to_filetime(moment) == filetime
    if filetime:
        assert from_filetime(str(filetime)) == moment


def test_never_logged_on_reads_as_none():
    assert from_filetime("0") is None and from_filetime(None) is None
    assert from_filetime(str(0x7FFFFFFFFFFFFFFF)) is None
    with pytest.raises(ValueError, match="naive"):
        to_filetime(datetime(2026, 1, 1))


def test_accounts_read_the_seeded_directory(directory):
    accounts = {row["username"]: row for row in directory.accounts()}

    assert len(accounts) == len(seed.accounts("ad"))
    assert accounts["ken"]["enabled"] is True and accounts["ken"]["employee_id"] == "E1015"
    assert accounts["lena"]["enabled"] is False and accounts["beth"]["enabled"] is False
    assert accounts["nora"]["last_login"] == datetime(2026, 6, 3, 9, tzinfo=UTC)
    assert accounts["ken"]["manager"] == "alice" and accounts["carol"]["manager"] is None
    assert accounts["old.admin"]["employee_id"] is None
    assert accounts["mallory"]["display_name"] == "<script>alert(1)</script> Mallory"
    assert accounts["ken"]["account_id"] == "cn=ken,ou=Users,dc=example,dc=com"


def test_memberships_from_member_of_equal_those_from_the_groups(directory, monkeypatch, slapd, tmp_path):
    mapping = default_mapping()
    mapping["attributes"]["member_of"] = None
    without_member_of = hook_with(monkeypatch, slapd, tmp_path, "ldap_no_memberof", mapping)

    via_member_of = Counter((m["account_id"], m["group"]) for m in directory.memberships())
    via_groups = Counter((m["account_id"], m["group"]) for m in without_member_of.memberships())

    assert via_member_of == via_groups
    assert sum(via_member_of.values()) == sum(len(a.groups) for a in seed.accounts("ad"))
    assert via_member_of[("cn=old.admin,ou=Users,dc=example,dc=com", "Domain Admins")] == 1


def test_a_mapping_with_other_attribute_names_works(monkeypatch, slapd, tmp_path):
    mapping = default_mapping()
    mapping["user_filter"] = "(objectClass=inetOrgPerson)"
    mapping["attributes"]["username"] = "cn"  # an OpenLDAP directory without sAMAccountName
    hook = hook_with(monkeypatch, slapd, tmp_path, "ldap_cn", mapping)

    assert {row["username"] for row in hook.accounts()} == {a.username for a in seed.accounts("ad")}
    assert hook.groups_of("chuck") == {"Payments"}


def test_a_bad_mapping_file_names_the_file_and_field(tmp_path):
    path = tmp_path / "directory.yaml"
    mapping = default_mapping()
    del mapping["attributes"]["username"]
    path.write_text(yaml.safe_dump(mapping))

    line = path.read_text().splitlines().index("attributes:") + 1

    with pytest.raises(ValueError, match=rf"directory\.yaml \(line {line}\): attributes > field 'username': "
                                         "Field required"):
        load_mapping(path)


def test_paged_search_reads_past_the_server_size_limit(monkeypatch, slapd, tmp_path):
    hook = hook_with(monkeypatch, slapd, tmp_path, "ldap_paged", page_size=4)

    names = [row["username"] for row in hook.accounts()]

    assert len(names) == len(set(names)) == len(seed.accounts("ad"))


def test_a_connection_dropped_mid_search_loses_and_repeats_nothing(monkeypatch, slapd, tmp_path):
    hook = hook_with(monkeypatch, slapd, tmp_path, "ldap_drop", page_size=5)
    attributes = [hook.attrs.username]
    search = hook.paged_search(hook.conn_params["users_dn"], hook.mapping.user_filter, attributes)

    first = [next(search) for _ in range(7)]  # into the second page
    old_pid = slapd.pid
    slapd.restart()  # kills slapd: the open connection and its paged-search cookie are gone
    rest = list(search)

    assert slapd.pid != old_pid
    names = [entry["attributes"]["sAMAccountName"][0] for entry in first + rest]
    assert len(names) == len(set(names)) == len(seed.accounts("ad"))


def test_create_enable_and_group_changes_are_idempotent_and_read_back(directory):
    created = directory.create_account(username="nina", email="nina@example.com", display_name="Nina Joiner",
                                       employee_id="E1050", manager_username="dave")
    again = directory.create_account(username="nina", email="nina@example.com", display_name="Nina Joiner",
                                     employee_id="E1050", manager_username="dave")

    assert created == again
    assert created["enabled"] is False and created["manager"] == "dave"  # AD creates accounts disabled
    assert [directory.enable("nina")["changed"], directory.enable("nina")["changed"]] == [True, False]
    assert directory.find_account("nina")["enabled"] is True
    assert [directory.add_to_group("nina", "Engineers")["changed"],
            directory.add_to_group("nina", "Engineers")["changed"]] == [True, False]
    assert directory.groups_of("nina") == {"Engineers"}
    assert [directory.remove_from_group("nina", "Engineers")["changed"],
            directory.remove_from_group("nina", "Engineers")["changed"]] == [True, False]
    assert [directory.disable("nina")["changed"], directory.disable("nina")["changed"]] == [True, False]
    assert directory.groups_of("nina") == set() and directory.find_account("nina")["enabled"] is False


def test_unknown_accounts_and_groups_are_named(directory):
    assert directory.find_account("nobody") is None
    with pytest.raises(ValueError, match="no directory group 'Astronauts'"):
        directory.add_to_group("ken", "Astronauts")
    with pytest.raises(ValueError, match="no directory account 'nobody'"):
        directory.disable("nobody")


def test_the_connection_env_is_what_the_hook_reads(slapd):
    conn = json.loads(os.environ["AIRFLOW_CONN_LDAP_DEFAULT"])

    assert conn["port"] == slapd.port and conn["extra"]["base_dn"] == "dc=example,dc=com"
    ok, message = DirectoryHook().test_connection()
    assert ok, message

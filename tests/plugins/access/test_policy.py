from __future__ import annotations

from pathlib import Path

import pytest

from prep_support.access.policy import PolicyError, load_policy
from tests.plugins.access.conftest import POLICY_YAML


def test_the_shipped_policy_loads() -> None:
    policy = load_policy()
    assert policy.dormancy_days == 90
    assert policy.owner_of("okta", "payments-approve").owner == "bob"
    assert policy.owner_of("okta", "jira-users").owner == "alice"
    assert ("ad", "Domain Admins") in policy.privileged_pairs


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param("dormancy_days: 90", "dormancy_days: 0", "(line 5): field 'dormancy_days': Input should be greater",
                 id="range"),
    pytest.param("{system: okta, group: app-admins}", "{system: okat, group: app-admins}",
                 "(line 7): privileged[0] (id 'app-admins') > field 'system': Input should be 'okta' or 'ad'",
                 id="unknown-system"),
    pytest.param("groups: [payments-initiate, payments-approve]", "groups: [payments-approve, payments-approve]",
                 "(line 9): sod_pairs[0] (id 'payments') > field 'groups': "
                 "a separation-of-duty pair needs two different groups", id="sod"),
    pytest.param("reminder_hours_before: [24]", "reminder_hours_before: [72]",
                 "(line 20): field 'review': reminder_hours_before 72 is not before the response timeout (48 h)",
                 id="reminder"),
    pytest.param("leaver_approvers: [carol, bob]", "leaver_approver: [carol]",
                 "(line 21): field 'leaver_approver': unknown field (a typo?)", id="typo"),
])
def test_a_bad_policy_names_file_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in POLICY_YAML
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML.replace(old, new))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert str(error.value).startswith(str(path))
    assert expected in str(error.value)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("systems: [\n  okta\n dormancy_days: 3\n")
    with pytest.raises(PolicyError, match=r"policy.yaml \(line \d+, column \d+\): YAML syntax error"):
        load_policy(path)

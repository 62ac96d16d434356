"""Four eyes as a table: who asked, who may approve, and whose answer counts."""

from __future__ import annotations

import pytest

from prep_support.approvals import SYSTEM, FourEyesError, approvers, check_answer, requester

SETTING = "privileged_approvers in include/config/access/policy.yaml"


@pytest.mark.parametrize("triggering_user, expected", [
    pytest.param("alice", "alice", id="logged-in-user"),
    pytest.param(" carol ", "carol", id="trimmed"),
    pytest.param(None, SYSTEM, id="scheduled-or-asset"),
    pytest.param("", SYSTEM, id="empty"),
])
def test_the_requester_is_the_triggering_user_or_the_system(triggering_user, expected) -> None:
    assert requester(triggering_user) == expected


@pytest.mark.parametrize("candidates, who, subjects, expected", [
    pytest.param(["alice", "bob", "carol"], "alice", ["omar"], ["bob", "carol"], id="requester-excluded"),
    pytest.param(["dave", "Priya", "bob", "dave"], "alice", ["priya"], ["dave", "bob"], id="subject-once-each"),
    pytest.param(["ALICE", "bob"], "alice", [], ["bob"], id="case-insensitive"),
    pytest.param([None, "", "carol"], SYSTEM, ["liam", "ken"], ["carol"], id="system-requester-excludes-nobody"),
])
def test_approvers_exclude_the_requester_and_the_subjects(candidates, who, subjects, expected) -> None:
    assert approvers(candidates, requester=who, subjects=subjects, setting=SETTING) == [
        {"id": name, "name": name} for name in expected]


def test_nobody_left_names_the_setting_to_change() -> None:
    with pytest.raises(FourEyesError) as raised:
        approvers(["alice", "omar", None], requester="alice", subjects=["omar"], setting=SETTING)
    assert str(raised.value) == ("nobody may approve this: every approver is the requester alice and the subject "
                                 f"omar (four eyes); add another approver to {SETTING}")


@pytest.mark.parametrize("responder, message", [
    pytest.param("alice", "alice answered their own approval as its requester", id="requester"),
    pytest.param("Omar", "Omar answered their own approval as its subject", id="subject"),
    pytest.param(None, "the approval has no responder", id="nobody"),
])
def test_an_answer_by_the_requester_or_subject_is_refused(responder, message) -> None:
    with pytest.raises(FourEyesError, match=message):
        check_answer(responder, requester="alice", subjects=["omar"])


def test_an_answer_by_someone_else_counts() -> None:
    assert check_answer("bob", requester="alice", subjects=["omar"]) == "bob"
    assert check_answer("carol", requester=SYSTEM, subjects=["liam"]) == "carol"

from __future__ import annotations

import pytest

from prep_support.access.evidence import build_pack, verify_manifest
from prep_support.access.findings import compute_findings, store_findings
from prep_support.access.packets import packet
from prep_support.access.remediation import RemediationFailed, remediate
from prep_support.access.review import (
    DEFAULT_RESPONDER,
    DecisionError,
    apply_default,
    build_items,
    load_items,
    record_decisions,
    record_leaver_approval,
    reviewers,
    store_items,
)
from prep_support.access.snapshot import Source, write_snapshot
from tests.plugins.access.conftest import AS_OF


@pytest.fixture
def campaign(engine, frames, policy):
    write_snapshot(engine, "2026-Q4", [Source("okta.accounts", "accounts", frames["accounts"], AS_OF),
                                       Source("okta.memberships", "memberships", frames["memberships"], AS_OF),
                                       Source("hr.people", "people", frames["people"], AS_OF)],
                   run_id="r", as_of=AS_OF, now=AS_OF)
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, AS_OF)
    store_findings(engine, "2026-Q4", findings)
    store_items(engine, "2026-Q4", build_items(frames["accounts"], frames["memberships"], frames["people"], findings,
                                               policy))
    return "2026-Q4"


def by_key(engine, campaign):
    return {(i["username"], i["group_name"]): i for i in load_items(engine, campaign)}


def test_routing_manager_owner_self_review_and_fallback(engine, campaign) -> None:
    items = by_key(engine, campaign)
    assert items[("dave", "jira-users")]["reviewer"] == "alice"  # the manager
    assert items[("dave", "jira-users")]["routed_by"] == "manager"
    assert items[("grace", "payments-approve")]["reviewer"] == "bob"  # the application owner
    assert items[("grace", "payments-approve")]["routed_by"] == "owner:Payments"
    assert items[("grace", "payments-approve")]["kinds"] == ["role_drift", "sod_conflict"]
    # bob owns Payments but holds payments-initiate himself: up his manager chain, to alice.
    assert items[("bob", "payments-initiate")]["reviewer"] == "alice"
    assert items[("bob", "payments-initiate")]["routed_by"] == "escalated:self-review"
    # alice has no manager: her own access goes to the fallback reviewer.
    assert items[("alice", "app-admins")]["reviewer"] == "carol"
    assert items[("mallory", "")]["reviewer"] == "carol"  # orphan: no manager
    assert items[("mallory", "")]["action"] == "disable_account"
    assert items[("erin", "")]["routed_by"] == "leaver_approval"
    assert ("erin", "support-analysts") not in items  # a leaver's groups go with the account
    assert all(item["reviewer"] != item["subject"] for item in items.values())
    assert reviewers(engine, campaign) == ["alice", "bob", "carol"]


def test_decisions_are_kept_with_who_when_why_and_never_asked_again(engine, campaign) -> None:
    dave = by_key(engine, campaign)[("dave", "jira-users")]["item_id"]
    first = record_decisions(engine, campaign, "alice", {dave: "revoke"}, "alice", AS_OF, "left the team")
    assert first == {"recorded": 1, "already_decided": 0}
    again = record_decisions(engine, campaign, "alice", {dave: "keep"}, "alice", AS_OF, "changed my mind")
    assert again == {"recorded": 0, "already_decided": 1}
    item = by_key(engine, campaign)[("dave", "jira-users")]
    assert (item["decision"], item["decided_by"], item["comment"]) == ("revoke", "alice", "left the team")
    assert item["decided_at"] == AS_OF
    assert all(i["item_id"] != dave for i in load_items(engine, campaign, reviewer="alice", undecided=True))


def test_a_reviewer_cannot_answer_another_packet_or_their_own_access(engine, campaign) -> None:
    items = by_key(engine, campaign)
    with pytest.raises(DecisionError, match="'bob' answered the packet of 'alice'"):
        record_decisions(engine, campaign, "alice", {items[("dave", "jira-users")]["item_id"]: "keep"}, "bob", AS_OF)
    with pytest.raises(DecisionError, match="not in 'alice'"):
        record_decisions(engine, campaign, "alice", {items[("grace", "payments-approve")]["item_id"]: "keep"},
                         "alice", AS_OF)


def test_undecided_items_take_the_default(engine, campaign) -> None:
    dave = by_key(engine, campaign)[("dave", "jira-users")]["item_id"]
    record_decisions(engine, campaign, "alice", {dave: "revoke"}, "alice", AS_OF)
    defaulted = apply_default(engine, campaign, "keep", AS_OF)
    items = load_items(engine, campaign)
    assert defaulted == len(items) - 1
    assert {i["decision"] for i in items if i["item_id"] != dave} == {"keep"}
    assert {i["decided_by"] for i in items if i["item_id"] != dave} == {DEFAULT_RESPONDER}


def test_a_rerun_of_findings_keeps_decisions(engine, campaign, frames, policy) -> None:
    dave = by_key(engine, campaign)[("dave", "jira-users")]["item_id"]
    record_decisions(engine, campaign, "alice", {dave: "revoke"}, "alice", AS_OF)
    findings = compute_findings(frames["accounts"], frames["memberships"], frames["people"], policy, AS_OF)
    stored = store_items(engine, campaign, build_items(frames["accounts"], frames["memberships"], frames["people"],
                                                       findings, policy))
    assert stored["new"] == 0
    assert by_key(engine, campaign)[("dave", "jira-users")]["decision"] == "revoke"


class FakeOkta:
    """In-memory Okta for the pure remediation core (the whole-DAG test uses the sandbox)."""

    def __init__(self) -> None:
        self.groups = {"00u3": {"jira-users", "support-analysts"}, "00u4": {"support-analysts"}}
        self.enabled = {"00u3": True, "00u4": True}
        self.calls: list[tuple[str, str]] = []
        self.fail_next = False

    def state(self, item):
        return {"exists": True, "enabled": self.enabled[item["account_id"]],
                "groups": sorted(self.groups[item["account_id"]])}

    def remove_group(self, item):
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("dropped")
        self.calls.append(("remove", item["account_id"]))
        self.groups[item["account_id"]].discard(item["group_name"])

    def disable(self, item):
        self.calls.append(("disable", item["account_id"]))
        self.enabled[item["account_id"]] = False


def test_remediation_revokes_once_verified_and_leavers_only_after_approval(engine, campaign) -> None:
    okta = FakeOkta()
    dave = by_key(engine, campaign)[("dave", "jira-users")]["item_id"]
    record_decisions(engine, campaign, "alice", {dave: "revoke"}, "alice", AS_OF)
    okta.fail_next = True
    with pytest.raises(RemediationFailed, match="1 revocation"):
        remediate(engine, campaign, {"okta": okta}, AS_OF)
    assert remediate(engine, campaign, {"okta": okta}, AS_OF) == {"revoked": 1, "already_revoked": 0, "failed": 0}
    assert "jira-users" not in okta.groups["00u3"]
    assert okta.calls == [("remove", "00u3")]
    assert remediate(engine, campaign, {"okta": okta}, AS_OF)["revoked"] == 0  # never twice
    assert okta.enabled["00u4"]  # the leaver waits for the approval
    with pytest.raises(DecisionError, match="'erin' is among the leavers"):
        record_leaver_approval(engine, campaign, True, "erin", AS_OF)
    record_leaver_approval(engine, campaign, True, "carol", AS_OF)
    remediate(engine, campaign, {"okta": okta}, AS_OF)
    assert okta.calls == [("remove", "00u3"), ("disable", "00u4")]


def test_packet_escapes_html_and_the_evidence_manifest_matches(engine, campaign) -> None:
    items = load_items(engine, campaign, reviewer="alice")
    rendered = packet(campaign, "alice", items, due="soon", default_decision="keep")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered["html"]
    assert "<script>" not in rendered["html"]
    assert rendered["csv"].splitlines()[0].startswith("item_id,system,account")
    assert len(rendered["csv"].strip().splitlines()) == len(items) + 1
    apply_default(engine, campaign, "keep", AS_OF)
    files = build_pack(engine, campaign)
    names = [f.name for f in files]
    assert names[-1] == "manifest.json" and "decisions.csv" in names and "population/okta.memberships.csv" in names
    assert verify_manifest(files) == []
    summary = next(f for f in files if f.name == "summary.html").content.decode()
    assert "<script>alert" not in summary
    again = {f.name: f.sha256 for f in build_pack(engine, campaign)}
    assert again == {f.name: f.sha256 for f in files}  # same state, same bytes

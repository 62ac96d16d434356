"""The health state machine and the incident plan, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prep_support.health import CheckState, Thresholds, advance, blocked_by, service_state
from prep_support.incidents import CheckView, Open, OpenIncident, Resolve, Update, evidence_of, plan

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RULES = Thresholds()


def run(statuses: str, critical: bool = True, regressions: str = "", start: CheckState | None = None):
    """Fold results written as letters (o ok, w warn, f fail, n not evaluable); collect transitions."""
    state = start or CheckState("svc/health")
    transitions = []
    for number, letter in enumerate(statuses):
        status = {"o": "ok", "w": "warn", "f": "fail", "n": "not_evaluable"}[letter]
        at = T0 + timedelta(minutes=5 * number)
        evaluation = advance(state, status, critical=critical, run_id=f"run-{number}", at=at,
                             detail=f"result {letter}", regression=regressions[number:number + 1] == "r",
                             thresholds=RULES)
        state = evaluation.state
        transitions += [(t.before, t.after, t.flapping) for t in evaluation.transitions]
    return state, transitions


@pytest.mark.parametrize(
    ("statuses", "critical", "final", "transitions"),
    [
        pytest.param("ff", True, "ok", [], id="two-failures-page-nobody"),
        pytest.param("fff", True, "down", [("ok", "down", False)], id="three-failures-go-down"),
        pytest.param("fffo", True, "down", [("ok", "down", False)], id="one-success-does-not-recover"),
        pytest.param("fffoo", True, "ok", [("ok", "down", False), ("down", "ok", False)], id="two-successes-recover"),
        pytest.param("fff", False, "degraded", [("ok", "degraded", False)], id="non-critical-degrades"),
        pytest.param("www", True, "degraded", [("ok", "degraded", False)], id="slow-degrades"),
        pytest.param("fwf", True, "degraded", [("ok", "degraded", False)], id="mixed-problems-degrade"),
        pytest.param("ffnnf", True, "down", [("ok", "down", False)], id="not-evaluable-neither-counts-nor-resets"),
        pytest.param("fofofo", True, "ok", [], id="alternating-blips-stay-ok"),
    ],
)
def test_state_changes_only_after_consecutive_results(statuses, critical, final, transitions) -> None:
    state, seen = run(statuses, critical)
    assert state.state == final
    assert seen == transitions


def test_the_same_run_folded_twice_counts_once() -> None:
    state = CheckState("svc/health")
    for _ in range(3):
        state = advance(state, "fail", critical=True, run_id="same-run", at=T0, detail="x", regression=False,
                        thresholds=RULES).state
    assert (state.state, state.failures) == ("ok", 1)


def test_flapping_is_reported_once_not_as_a_stream() -> None:
    # down, up, down, up, down: five changes within the hour
    state, seen = run("fffoofffoofff")
    assert state.flapping
    assert seen[-1] == ("ok", "down", True)
    assert sum(1 for *_, flapping in seen if flapping) == 1
    # more changes while flapping: silent
    state, more = run("oofff", start=state)
    assert more == []
    # an hour and more without a change ends flapping, reported once
    quiet = CheckState(**{**state.__dict__, "last_run_id": None})
    later = advance(quiet, "fail", critical=True, run_id="later", at=T0 + timedelta(hours=5), detail="x",
                    regression=False, thresholds=RULES)
    assert not later.state.flapping
    assert [(t.after, t.flapping) for t in later.transitions] == [("down", False)]


def test_sustained_regression_degrades_with_performance_cause() -> None:
    state, seen = run("ooo", regressions="rrr")
    assert (state.state, state.cause) == ("degraded", "performance")
    assert state.detail.startswith("performance trend")
    assert seen == [("ok", "degraded", False)]
    state, seen = run("oo", start=state)
    assert state.state == "ok"


def test_service_state_is_its_worst_check() -> None:
    down = CheckState("a", state="down")
    degraded = CheckState("b", state="degraded")
    assert service_state([(down, True), (degraded, True)]) == "down"
    assert service_state([(down, False), (CheckState("c"), True)]) == "degraded"
    assert service_state([(CheckState("c"), True)]) == "ok"


def test_blocked_by_follows_dependencies_transitively() -> None:
    depends = {"portal": ["orders"], "orders": ["auth"], "auth": []}
    assert blocked_by("portal", depends, {"auth": "down", "orders": "ok"}) == ["auth"]
    assert blocked_by("portal", depends, {"auth": "ok", "orders": "degraded"}) == []


def view(check_id: str, state: str = "down", cause: str = "availability", flapping: bool = False,
         detail: str = "HTTP 503 (expected 200)") -> CheckView:
    return CheckView(check_id, check_id.split("/")[0], state, cause, flapping, detail)


def incident(number: int, check_id: str, kind: str = "availability", state: str = "down",
             evidence: str | None = None, upstream: int | None = None) -> OpenIncident:
    return OpenIncident(number, f"{check_id}/{kind}", check_id.split("/")[0], check_id, kind, state,
                        evidence if evidence is not None else evidence_of(state, "HTTP 503 (expected 200)"), upstream)


def test_plan_opens_once_and_leaves_unchanged_incidents_alone() -> None:
    checks = [view("orders/health"), view("auth/health", state="ok", cause="")]
    states = {"orders": "down", "auth": "ok"}
    actions = plan(checks, states, {}, [], set())
    assert actions == [Open("orders/health/availability", "orders", "orders/health", "availability", "down",
                            "down: HTTP 503 (expected 200)")]
    assert plan(checks, states, {}, [incident(1, "orders/health")], set()) == []


def test_plan_updates_on_new_evidence_but_not_on_moving_numbers() -> None:
    open_one = incident(1, "orders/health", state="degraded", evidence=evidence_of("degraded", "latency 812 ms"))
    slower = [view("orders/health", state="degraded", detail="latency 1490 ms")]
    assert plan(slower, {"orders": "degraded"}, {}, [open_one], set()) == []
    worse = [view("orders/health", detail="HTTP 503 (expected 200)")]
    assert plan(worse, {"orders": "down"}, {}, [open_one], set()) == [
        Update(1, "down", "down: HTTP 503 (expected 200)")
    ]


def test_plan_resolves_recovered_incidents() -> None:
    checks = [view("orders/health", state="ok", cause="")]
    assert plan(checks, {"orders": "ok"}, {}, [incident(7, "orders/health")], set()) == [Resolve(7, "recovered")]


def test_maintenance_opens_updates_and_resolves_nothing() -> None:
    assert plan([view("orders/health")], {"orders": "down"}, {}, [], {"orders"}) == []
    recovered = [view("orders/health", state="ok", cause="")]
    assert plan(recovered, {"orders": "ok"}, {}, [incident(3, "orders/health")], {"orders"}) == []


def test_dependants_of_a_down_service_are_linked_not_ticketed() -> None:
    checks = [view("auth/health"), view("portal/health"), view("orders/health")]
    states = {"auth": "down", "portal": "down", "orders": "down"}
    depends = {"portal": ["orders", "auth"], "orders": ["auth"], "auth": []}
    actions = plan(checks, states, depends, [], set())
    assert [(a.check_id, a.upstream_service) for a in actions] == [
        ("auth/health", None), ("orders/health", "auth"), ("portal/health", "auth"),
    ]
    assert actions[0].evidence.endswith("also failing because of it: orders/health, portal/health")


def test_a_linked_incident_becomes_its_own_when_the_upstream_recovers() -> None:
    checks = [view("auth/health", state="ok", cause=""), view("orders/health")]
    open_now = [incident(1, "auth/health"), incident(2, "orders/health", upstream=1)]
    actions = plan(checks, {"auth": "ok", "orders": "down"}, {"orders": ["auth"]}, open_now, set())
    assert Resolve(1, "recovered") in actions and Resolve(2, "upstream recovered") in actions
    assert Open("orders/health/availability", "orders", "orders/health", "availability", "down",
                "down: HTTP 503 (expected 200)") in actions


def test_flapping_check_gets_one_flapping_incident_and_freezes_the_rest() -> None:
    checks = [view("orders/health", state="ok", cause="", flapping=True)]
    actions = plan(checks, {"orders": "ok"}, {}, [incident(4, "orders/health")], set())
    assert actions == [Open("orders/health/flapping", "orders", "orders/health", "flapping", "ok",
                            "ok: HTTP 503 (expected 200)")]

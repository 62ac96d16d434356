"""The health state machine: from a stream of check results to ok / degraded / down.

A state changes only after a number of consecutive results agree (three failures to go
down, two successes to recover, by default), so one blip pages nobody. A check whose
state keeps changing (``flapping_changes`` changes within ``flapping_window``) is marked
flapping; while it flaps its changes are not reported one by one.

Pure functions over small dataclasses: no database, no Airflow, tested without mocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

OK, DEGRADED, DOWN = "ok", "degraded", "down"
# Why a check is not ok; part of an incident's dedup key (service/check/kind).
AVAILABILITY, PERFORMANCE, FLAPPING = "availability", "performance", "flapping"
SEVERITY = {OK: 0, DEGRADED: 1, DOWN: 2}


class Thresholds(BaseModel):
    """How many agreeing results change a state, and what counts as flapping."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    down_after: int = Field(default=3, ge=1, le=100)
    recover_after: int = Field(default=2, ge=1, le=100)
    flapping_changes: int = Field(default=5, ge=2, le=100)
    flapping_window_minutes: int = Field(default=60, ge=5, le=24 * 60)
    # Performance trend: p95 over the last hour above factor x the 7-day baseline for N sweeps.
    regression_factor: float = Field(default=2.0, gt=1)
    regression_sweeps: int = Field(default=3, ge=1, le=100)

    @property
    def flapping_window(self) -> timedelta:
        return timedelta(minutes=self.flapping_window_minutes)


@dataclass(frozen=True)
class CheckState:
    """What we remember of a check between sweeps."""

    check_id: str
    state: str = OK
    cause: str = ""  # availability | performance, when not ok
    since: datetime | None = None
    failures: int = 0  # consecutive "fail" results
    problems: int = 0  # consecutive results that were not ok (fail or warn)
    successes: int = 0  # consecutive ok results
    flapping: bool = False
    changes: tuple[datetime, ...] = ()  # recent state changes, for flapping
    regression_streak: int = 0  # consecutive sweeps with a performance regression
    last_run_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Transition:
    """A change worth telling someone about."""

    check_id: str
    before: str
    after: str
    flapping: bool
    at: datetime
    detail: str


@dataclass
class Evaluation:
    state: CheckState
    transitions: list[Transition] = field(default_factory=list)


def advance(previous: CheckState, status: str, *, critical: bool, run_id: str, at: datetime,
            detail: str, regression: bool, thresholds: Thresholds) -> Evaluation:
    """Fold one result into a check's state.

    ``status`` is the probe's ok / warn / fail / not_evaluable; ``regression`` says whether the
    performance trend regressed in this sweep. Folding the same run twice changes nothing
    (a retried task must not count a result twice).
    """
    if previous.last_run_id == run_id or status == "not_evaluable":
        return Evaluation(previous)
    failures = previous.failures + 1 if status == "fail" else 0
    problems = previous.problems + 1 if status in ("fail", "warn") else 0
    successes = previous.successes + 1 if status == "ok" else 0
    streak = previous.regression_streak + 1 if regression else 0

    target, cause = previous.state, previous.cause
    if failures >= thresholds.down_after:
        target, cause = (DOWN if critical else DEGRADED), AVAILABILITY
    elif problems >= thresholds.down_after:
        target, cause = DEGRADED, AVAILABILITY
    elif streak >= thresholds.regression_sweeps and status == "ok":
        target, cause = DEGRADED, PERFORMANCE
        detail = f"performance trend: {detail}"
    elif successes >= thresholds.recover_after and streak < thresholds.regression_sweeps:
        target, cause = OK, ""

    if status == "ok" and target != OK and cause != PERFORMANCE:
        detail = previous.detail  # a success that does not yet recover it is no new evidence of the problem
    changes = tuple(t for t in previous.changes if at - t <= thresholds.flapping_window)
    if target != previous.state:
        changes += (at,)
    flapping = len(changes) >= thresholds.flapping_changes or (previous.flapping and bool(changes))
    state = replace(
        previous, state=target, cause=cause, failures=failures, problems=problems, successes=successes,
        regression_streak=streak, changes=changes, flapping=flapping, last_run_id=run_id,
        since=at if target != previous.state else previous.since, detail=detail,
    )
    transitions = []
    if target != previous.state and not (previous.flapping and flapping):
        transitions.append(Transition(previous.check_id, previous.state, target, flapping, at, detail))
    elif flapping != previous.flapping:
        # Entering or leaving flapping is reported once, whatever the state does meanwhile.
        transitions.append(Transition(previous.check_id, previous.state, target, flapping, at, detail))
    return Evaluation(state, transitions)


def service_state(check_states: Iterable[tuple[CheckState, bool]]) -> str:
    """A service is as bad as its worst check; a non-critical check at most degrades it."""
    worst = OK
    for state, critical in check_states:
        effective = state.state if critical or state.state != DOWN else DEGRADED
        if SEVERITY[effective] > SEVERITY[worst]:
            worst = effective
    return worst


def blocked_by(service_id: str, depends_on: Mapping[str, Iterable[str]], states: Mapping[str, str]) -> list[str]:
    """The dependencies (transitively) of a service that are down: its failures are theirs."""
    found: list[str] = []
    seen: set[str] = {service_id}
    pending = list(depends_on.get(service_id, ()))
    while pending:
        dependency = pending.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        if states.get(dependency) == DOWN:
            found.append(dependency)
        pending.extend(depends_on.get(dependency, ()))
    return found

"""Shifts and the handover plan: pure functions, as tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from prep_support.catalog import load_catalog
from prep_support.messages import render_slack
from prep_support.routing import RoutingError, load_routing
from prep_support.shifts import (
    Deadline,
    Facts,
    FailedRun,
    FailingDay,
    OpenIncident,
    OutageItem,
    Shifts,
    WaitingStep,
    plan_handover,
    shift_at,
    teams_of,
)

ROOT = Path(__file__).resolve().parents[2]
LONDON = Shifts(timezone="Europe/London", changes=["19:00", "07:00"], platform_team="ops@example.com")


@pytest.mark.parametrize(("when", "start", "end"), [
    pytest.param(datetime(2026, 12, 4, 7, 0, tzinfo=UTC), datetime(2026, 12, 4, 7, tzinfo=UTC),
                 datetime(2026, 12, 4, 19, tzinfo=UTC), id="at-the-change"),
    pytest.param(datetime(2026, 12, 4, 6, 59, tzinfo=UTC), datetime(2026, 12, 3, 19, tzinfo=UTC),
                 datetime(2026, 12, 4, 7, tzinfo=UTC), id="night-shift-over-midnight"),
    pytest.param(datetime(2026, 7, 1, 6, 30, tzinfo=UTC), datetime(2026, 7, 1, 6, tzinfo=UTC),
                 datetime(2026, 7, 1, 18, tzinfo=UTC), id="summer-time-07:00-is-06:00-utc"),
    pytest.param(datetime(2026, 3, 29, 12, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC),
                 datetime(2026, 3, 29, 18, tzinfo=UTC), id="day-the-clocks-go-forward"),
])
def test_a_moment_falls_in_the_shift_that_started_last(when, start, end) -> None:
    shift = shift_at(when, LONDON)
    assert (shift.start, shift.end) == (start, end)
    assert shift.previous_start < shift.start


@pytest.mark.parametrize(("shifts", "message"), [
    pytest.param({"timezone": "Mars/Olympus", "changes": ["07:00"]}, "unknown time zone 'Mars/Olympus'", id="zone"),
    pytest.param({"changes": ["7:00"]}, "'7:00' is not a time of day HH:MM", id="format"),
    pytest.param({"changes": ["24:00"]}, "'24:00' is not a time of day", id="hour"),
    pytest.param({"changes": []}, "at least 1 item", id="none"),
    pytest.param({"changes": ["07:00", "07:00"]}, "listed twice", id="twice"),
    pytest.param({"changes": ["07:00"], "platform_team": "nobody@example.com"},
                 "shifts > platform_team: 'nobody@example.com' owns no service", id="unknown-team"),
])
def test_a_bad_shifts_section_names_routing_yaml_and_the_field(tmp_path, shifts, message) -> None:
    data = yaml.safe_load((ROOT / "include" / "config" / "routing.yaml").read_text())
    data["shifts"] = shifts
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RoutingError, match="routing.yaml") as raised:
        load_routing(load_catalog(), path)
    assert "shifts" in str(raised.value) and message in str(raised.value)


def test_the_plan_gives_each_team_its_own_and_the_platform_team_airflow_items() -> None:
    shift = shift_at(datetime(2026, 12, 4, 7, tzinfo=UTC), LONDON)
    since = shift.previous_start
    at = shift.start - timedelta(hours=1)
    facts = Facts(
        incidents=[OpenIncident("a/h/availability", "a", "availability", "High", "down", at, at, "A-1", "u"),
                   OpenIncident("b/h/availability", "b", "availability", "High", "down", at, at, "B-1", "u")],
        outages=[OutageItem("o1", "a", "planned", "scheduled", shift.start + timedelta(hours=1), None, None),
                 OutageItem("o2", "a", "planned", "scheduled", shift.end + timedelta(hours=1), None, None),
                 OutageItem("o3", "a", "unplanned", "active", at, None, None)],
        waiting=[WaitingStep("d", "r", "t", "Approve?", at, ("alice",), "u")],
        failed_runs=[FailedRun("d", "r1", at, "u"), FailedRun("d", "r0", since - timedelta(minutes=1), "u")],
        failing_days=[FailingDay("s", "a", date(2026, 12, 1), ("c",))],
        deadlines=[Deadline("UAT", "1.2", shift.start + timedelta(hours=3), None),
                   Deadline("UAT", "1.3", shift.end + timedelta(days=3), None)],
    )
    team_a, team_b = teams_of([("a", "A", "ops@example.com"), ("b", "B", "web@example.com")])
    a = plan_handover(team_a, shift, since, facts, platform_team="ops@example.com")
    b = plan_handover(team_b, shift, since, facts, platform_team="ops@example.com")
    assert a.summary() == {"incidents": 1, "outages_now": 1, "outages_planned": 1, "waiting": 1, "failed_runs": 1,
                           "failing_days": 1, "maintenance": 0, "deadlines": 1}
    assert b.summary() == {"incidents": 1, "outages_now": 0, "outages_planned": 0, "waiting": 0, "failed_runs": 0,
                           "failing_days": 0, "maintenance": 0, "deadlines": 0}
    empty = plan_handover(teams_of([("c", "C", "x@example.com")])[0], shift, since, facts, platform_team=None)
    assert empty.empty
    text = render_slack("handover/slack.txt.j2", h=empty, team_name="x", shift_label="Fri 07:00", since_label="Thu",
                        ago=str, local=str, name=str)
    assert text.count("\n") == 0 and "nothing open" in text


def test_an_incident_diagnosis_shows_when_present_and_values_are_escaped_for_slack() -> None:
    shift = shift_at(datetime(2026, 12, 4, 7, tzinfo=UTC), LONDON)
    at = shift.start
    incidents = [OpenIncident("a/h/x", "a", "availability", "High", "down", at, at, None, None,
                              diagnosis="pool exhausted <!channel>"),
                 OpenIncident("a/h/y", "a", "performance", "High", "degraded", at, at, None, None)]
    team = teams_of([("a", "A", "ops@example.com")])[0]
    handover = plan_handover(team, shift, shift.previous_start, Facts(incidents=incidents), platform_team=None)
    text = render_slack("handover/slack.txt.j2", h=handover, team_name="ops", shift_label="s", since_label="t",
                        ago=lambda _: "1 h", local=str, name=str)
    assert text.count("Diagnosis:") == 1 and "pool exhausted &lt;!channel&gt;" in text

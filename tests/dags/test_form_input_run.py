"""A form value no retry can fix fails the run's first task once, naming the field (issue 12).

``2030-02-30T10:00Z`` passes the uat_cycle form's date-time pattern; a 5 MB release name passes its
character pattern. Both used to reach plan_cycle and fail there (a bare ValueError, retried; a
refusal echoing megabytes). What the analyst sees is the run's state, the task's tries, and the
support channel's message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.sandbox_client import call

ROOT = Path(__file__).resolve().parents[2]
FORM = {"release": "2030.02-bad-date", "test_plan": "checkout-release", "testers": [], "business_owner": "dana",
        "deadline": "2030-02-28T10:00Z"}


@pytest.fixture(scope="module")
def uat_dag(airflow_db, support_engine, sandbox):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "uat_cycle.py"))
    assert bag.import_errors == {}
    return bag.dags["uat_cycle"]


@pytest.mark.parametrize(("form", "said"), [
    pytest.param({"deadline": "2030-02-30T10:00Z"},
                 "deadline: '2030-02-30T10:00Z' is not a real date and time (day is out of range for month)",
                 id="february-30"),
])
def test_bad_form_input_fails_once_naming_the_field(uat_dag, sandbox, form: dict, said: str) -> None:
    base = sandbox.base_url
    call(base, "DELETE", "/slack/_sandbox/messages")
    call(base, "DELETE", "/jira/_sandbox/issues")
    run = uat_dag.test(logical_date=datetime(2030, 1, 6, tzinfo=UTC), run_conf={**FORM, **form})
    assert run.state == "failed"
    plan = run.get_task_instance("plan_cycle")
    assert plan.state == "failed" and plan.try_number == 1, "bad input is not retried"
    [alert] = [m for m in call(base, "GET", "/slack/_sandbox/messages")["messages"]
               if m["text"].startswith(":x: Prep Support task failed: *uat_cycle.plan_cycle*")]
    assert said in alert["text"]
    assert len(alert["text"]) < 2_000, "the refusal does not echo the value"
    assert call(base, "GET", "/jira/_sandbox/issues")["issues"] == [], "nothing was created"


def test_an_oversized_value_is_refused_with_its_length_not_echoed() -> None:
    """Airflow's form schema bounds the release; a run's conf through the API reaches the task as it is."""
    from airflow.sdk.exceptions import AirflowFailException

    from operators.uat_cycle import PlanUatCycleOperator

    with pytest.raises(AirflowFailException) as refused:
        PlanUatCycleOperator(task_id="plan_cycle").execute({"params": {**FORM, "testers": ["t" * 5_000_000]}})
    assert str(refused.value).startswith("testers[0]: 5,000,000 characters, more than the 10,000 a form field takes")
    assert len(str(refused.value)) < 200

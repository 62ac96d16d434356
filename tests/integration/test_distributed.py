"""The docker-compose topology, started natively (scripts/distributed.py), driven through the REST API.

PostgreSQL (metadata, Celery results and the support database), Redis (the Celery broker), the
api-server with the FAB auth manager, scheduler, dag-processor, triggerer and two Celery workers
run as separate processes. The tests unpause and trigger every DAG over ``/api/v2`` and check what
the runs did in the support database and the sandbox; then they restart the scheduler in the
middle of a run, and kill the worker running a task, and check that nothing is lost or done twice.

The topology's processes get their own environment (their own AIRFLOW_HOME and airflow.cfg),
never this test session's.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from prep_support.catalog import load_catalog
from prep_support.paths import catalog_path
from scripts.distributed import (
    POSTGRES_URL,
    QUICK_FAILOVER,
    REDIS_URL,
    DistributedAirflow,
    TopologyError,
    redis_call,
)
from tests.sandbox_client import call
from tests.services import service_missing

# Startup (about a minute) counts towards the first test's time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

# The same server as the other PostgreSQL tests (tests/conftest.py); the topology makes its own databases.
POSTGRES_ADMIN_URL = os.environ.get("PREP_TEST_POSTGRES_URL", POSTGRES_URL)
RUN_TIMEOUT_S = 120
# A task whose worker died: 20 s without heartbeat (QUICK_FAILOVER), the DAG's 20 s retry delay, the retry.
FAILOVER_TIMEOUT_S = 180
# data_quality catches up nightly runs from PREP_DQ_START_DATE (default 2026-11-01): from yesterday on,
# unpausing it starts one or two scheduled runs instead of one per night since then.
# access_review catches up quarterly from PREP_ACCESS_REVIEW_START_DATE: from now on, only the run triggered here.
DAG_SETTINGS = {"PREP_DQ_START_DATE": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT00:00:00+00:00"),
                "PREP_ACCESS_REVIEW_START_DATE": datetime.now(UTC).isoformat()}
SANDBOX_STORES = {"jira": ("/jira/_sandbox/issues", "issues"),
                  "servicenow": ("/servicenow/_sandbox/incidents", "incidents"),
                  "slack": ("/slack/_sandbox/messages", "messages"),
                  "teams": ("/teams/_sandbox/messages", "messages"),
                  "email": ("/smtp/_sandbox/messages", "messages")}


def _require_services() -> None:
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_ADMIN_URL.replace("postgresql+psycopg2://", "postgresql://"),
                         connect_timeout=5).close()
    except psycopg2.OperationalError as error:
        service_missing(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {error}")
    try:
        redis_call(REDIS_URL, ("PING",))
    except OSError as error:
        service_missing(f"Redis unreachable at {REDIS_URL}: {error}")


@pytest.fixture(scope="module")
def topology(request: pytest.FixtureRequest) -> Iterator[DistributedAirflow]:
    _require_services()
    failed_before = request.session.testsfailed
    began = time.monotonic()
    # A failed start says why (with the log of what failed) and removes its files; after a failed
    # test the files are kept for the logs.
    airflow = DistributedAirflow(settings=QUICK_FAILOVER, extra_env=DAG_SETTINGS,
                                 postgres_url=POSTGRES_ADMIN_URL).start()
    print(f"\n[timing] topology up in {time.monotonic() - began:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in airflow.timings.items())})")
    try:
        yield airflow
    finally:
        failed = request.session.testsfailed > failed_before
        if failed:
            for component in airflow.components.values():
                print(f"\n--- {component.name} ({component.log_path}) ---\n{component.log_tail(25)}")
        airflow.keep_files = failed
        began = time.monotonic()
        airflow.stop()
        print(f"\n[timing] topology stopped in {time.monotonic() - began:.1f} s"
              + (f"; logs kept in {airflow.work_dir}" if failed else ""))


@pytest.fixture(scope="module")
def support_db(topology: DistributedAirflow) -> Iterator[Any]:
    engine = create_engine(topology.postgres.url(topology.support_db, "postgresql+psycopg2"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def catalog_keys() -> set[str]:
    return set(load_catalog(str(catalog_path())).checks_by_key)


# --- REST API helpers ---------------------------------------------------------------------------


def run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def trigger(topology: DistributedAirflow, dag_id: str) -> str:
    """Unpause (paused DAGs' runs never start) and trigger a run for now; return its run id."""
    topology.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = topology.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                       {"logical_date": datetime.now(UTC).isoformat(), "conf": {}})
    return run["dag_run_id"]


def task_instances(topology: DistributedAirflow, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return topology.api("GET", f"{run_path(dag_id, run_id)}/taskInstances?limit=1000")["task_instances"]


def task_error(topology: DistributedAirflow, dag_id: str, ti: dict[str, Any]) -> str:
    """The exception a task instance's try ended with, from its log (read through the API)."""
    path = (f"{run_path(dag_id, ti['dag_run_id'])}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
            f"?map_index={ti['map_index']}")
    try:
        events = topology.api("GET", path)["content"]
    except Exception as error:
        return f"(log unreadable: {error})"
    for event in events:
        for detail in event.get("error_detail") or []:
            return f"{detail.get('exc_type')}: {detail.get('exc_value')}"
    return "; ".join(str(event.get("event")) for event in events if event.get("level") == "error")[-500:]


def raise_on_failed_tasks(topology: DistributedAirflow, dag_id: str, run_id: str = "~") -> None:
    """Fail at once, with the exception, when a task failed or waits for a retry (``~``: in any run)."""
    failed = topology.api("GET", f"{run_path(dag_id, run_id)}/taskInstances?state=failed&state=up_for_retry"
                                 "&state=upstream_failed")["task_instances"]
    if failed:
        raise AssertionError("; ".join(
            f"{dag_id} {ti['dag_run_id']} {ti['task_id']}[{ti['map_index']}] try {ti['try_number']} {ti['state']}: "
            f"{task_error(topology, dag_id, ti)}" for ti in failed))


def wait_for_run(topology: DistributedAirflow, dag_id: str, run_id: str, timeout_s: float = RUN_TIMEOUT_S,
                 retries_expected: bool = False) -> dict[str, Any]:
    """The run once it has finished; a failed task fails the wait at once, unless retries are expected."""
    def finished() -> dict[str, Any] | None:
        run = topology.api("GET", run_path(dag_id, run_id))
        if run["state"] in ("success", "failed"):
            return run
        if not retries_expected:
            raise_on_failed_tasks(topology, dag_id, run_id)
        return None

    try:
        return topology.wait_until(f"{dag_id} run {run_id} to finish", finished, timeout_s, interval_s=1)
    except TopologyError as error:
        states = [(ti["task_id"], ti["map_index"], ti["state"], ti["try_number"])
                  for ti in task_instances(topology, dag_id, run_id)]
        raise AssertionError(f"{error}; task instances: {states}") from error


def wait_idle(topology: DistributedAirflow, dag_id: str, timeout_s: float = 3 * RUN_TIMEOUT_S,
              on_poll: Callable[[], None] | None = None) -> list[dict]:
    """Wait until no run of the DAG (scheduled ones included) is queued or running; return all its runs."""
    def runs_if_idle() -> list[dict] | None:
        if on_poll is not None:
            on_poll()
        runs = topology.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1000")["dag_runs"]
        if runs and all(run["state"] in ("success", "failed") for run in runs):
            return runs
        raise_on_failed_tasks(topology, dag_id)
        return None

    return topology.wait_until(f"every {dag_id} run to finish", runs_if_idle, timeout_s, interval_s=1)


def wait_for_slow_call(base_url: str, system: str) -> None:
    """Wait until the sandbox holds the call its fault plan slows down: the task is inside that call."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while call(base_url, "GET", "/sandbox/faults")[system]["injected"] < 1:
        assert time.monotonic() < deadline, f"no call to {system} within {RUN_TIMEOUT_S} s"
        time.sleep(0.2)


def wait_for_task(topology: DistributedAirflow, dag_id: str, run_id: str, task_id: str,
                  map_index: int = 0) -> dict[str, Any]:
    """The task instance once it runs on a worker (state running, hostname recorded)."""
    def running() -> dict | None:
        for ti in task_instances(topology, dag_id, run_id):
            if ti["task_id"] == task_id and ti["map_index"] == map_index:
                if ti["state"] in ("success", "failed"):
                    raise AssertionError(f"{task_id} finished ({ti['state']}) before it could be caught running")
                return ti if ti["state"] == "running" and ti["hostname"] else None
        return None

    return topology.wait_until(f"{task_id} to run", running, RUN_TIMEOUT_S, interval_s=0.3)


def side_effects(base_url: str) -> dict[str, int]:
    """How many tickets and messages each stand-in system holds."""
    return {system: len(call(base_url, "GET", path)[key]) for system, (path, key) in SANDBOX_STORES.items()}


def results_of(support_db: Any, run_id: str) -> list[str]:
    with support_db.connect() as connection:
        return [row[0] for row in connection.execute(
            text("SELECT check_id FROM check_results WHERE run_id = :run_id"), {"run_id": run_id})]


def triggerable_without_form(details: dict[str, Any]) -> bool:
    """Every param has a value (its default), or its schema accepts null: the run needs no form."""
    for param in (details.get("params") or {}).values():
        schema_type = (param.get("schema") or {}).get("type")
        accepts_null = schema_type == "null" or (isinstance(schema_type, list) and "null" in schema_type)
        if param.get("value") is None and not accepts_null:
            return False
    return True


# --- Effects of each DAG, beyond its run succeeding ---------------------------------------------


def trend_reports_written(support_db: Any, catalog_keys: set[str], _run: dict[str, Any]) -> None:
    services = {key.split("/")[0] for key in catalog_keys}
    with support_db.connect() as connection:
        reported = {row[0] for row in connection.execute(text("SELECT DISTINCT service_id FROM trend_reports"))}
    assert reported == services, f"trend reports for {sorted(reported)}, expected every service {sorted(services)}"


def quality_results_recorded(support_db: Any, _catalog_keys: set[str], run: dict[str, Any]) -> None:
    from prep_support.quality.config import load_suites

    suites = {suite.id for suite in load_suites(catalog=load_catalog(str(catalog_path())))[0]}
    with support_db.connect() as connection:
        recorded = {row[0] for row in connection.execute(
            text("SELECT DISTINCT suite_id FROM dq_results WHERE run_id = :run_id"), {"run_id": run["dag_run_id"]})}
    assert recorded == suites, f"data-quality results for suites {sorted(recorded)}, expected {sorted(suites)}"


EFFECTS = {"service_trend_report": trend_reports_written, "data_quality": quality_results_recorded}


# --- Tests --------------------------------------------------------------------------------------


def test_health_sweep_over_the_api_records_every_check_and_opens_one_incident(
    topology: DistributedAirflow, support_db: Any, catalog_keys: set[str]
) -> None:
    began = time.monotonic()
    base = topology.sandbox.base_url
    dag_ids = [dag["dag_id"] for dag in topology.api("GET", "/api/v2/dags?limit=1000")["dags"]]
    assert "health_sweep" in dag_ids
    call(base, "PUT", "/estate/apps/orders-api", {"status_code": 503})

    # Three failures in a row take a check down (routing.yaml): the third run opens the incident.
    # Unpausing also lets the scheduler start the latest scheduled run: more failures, same incident.
    run_ids = []
    for _ in range(3):
        run_ids.append(trigger(topology, "health_sweep"))
        wait_for_run(topology, "health_sweep", run_ids[-1])
    runs = wait_idle(topology, "health_sweep")
    print(f"\n[timing] {len(runs)} health_sweep runs in {time.monotonic() - began:.1f} s")

    assert {run["dag_run_id"] for run in runs} >= set(run_ids)
    assert [run["state"] for run in runs] == ["success"] * len(runs)
    workers = set()
    for run in runs:
        checks = results_of(support_db, run["dag_run_id"])
        assert sorted(checks) == sorted(catalog_keys), f"results of {run['dag_run_id']}"
        workers |= {ti["hostname"] for ti in task_instances(topology, "health_sweep", run["dag_run_id"])}
    print(f"[info] health_sweep tasks ran on {sorted(workers)}")
    assert workers <= {topology.worker_node(name) for name in topology.workers}

    jira = call(base, "GET", "/jira/_sandbox/issues")["issues"]
    assert [(issue["project"], issue["fields"]["labels"][0]) for issue in jira] == [
        ("ORD", "prep-support:orders-api/health/availability")
    ]
    slack = call(base, "GET", "/slack/_sandbox/messages")["messages"]
    assert [message["channel_name"] for message in slack] == ["commerce-support"]


def test_scheduler_restart_in_the_middle_of_a_run_loses_nothing(
    topology: DistributedAirflow, support_db: Any, catalog_keys: set[str]
) -> None:
    base = topology.sandbox.base_url
    wait_idle(topology, "health_sweep")
    before = side_effects(base)
    # Prometheus answers probe_checks' query after 15 s (once): the task is running during the restart.
    call(base, "PUT", "/sandbox/faults/prometheus", {"delay_ms": 15_000, "times": 1})
    try:
        run_id = trigger(topology, "health_sweep")
        ti = wait_for_task(topology, "health_sweep", run_id, "probe_checks")
        wait_for_slow_call(base, "prometheus")
        began = time.monotonic()
        topology.restart_component("scheduler")
        topology.wait_until("the new scheduler to heartbeat", topology.scheduler_healthy)
        print(f"\n[timing] scheduler restarted in {time.monotonic() - began:.1f} s "
              f"while probe_checks ran on {ti['hostname']}")
        run = wait_for_run(topology, "health_sweep", run_id)
    finally:
        call(base, "DELETE", "/sandbox/faults")
    print(f"[timing] run finished {time.monotonic() - began:.1f} s after the restart began")

    tis = task_instances(topology, "health_sweep", run_id)
    assert run["state"] == "success"
    assert [(ti["task_id"], ti["state"], ti["try_number"]) for ti in tis if ti["try_number"] != 1] == [], \
        "a task ran again: the new scheduler should adopt what its predecessor had queued and running"
    assert sorted(results_of(support_db, run_id)) == sorted(catalog_keys)
    assert side_effects(base) == before


def test_killed_worker_task_is_retried_on_the_other_worker_without_duplicates(
    topology: DistributedAirflow, support_db: Any, catalog_keys: set[str]
) -> None:
    base = topology.sandbox.base_url
    wait_idle(topology, "health_sweep")
    before = side_effects(base)
    # Prometheus answers probe_checks' query after 25 s, once: the first try is killed while it
    # waits, the retry gets its answer at once.
    call(base, "PUT", "/sandbox/faults/prometheus", {"delay_ms": 25_000, "times": 1})
    try:
        run_id = trigger(topology, "health_sweep")
        ti = wait_for_task(topology, "health_sweep", run_id, "probe_checks")
        wait_for_slow_call(base, "prometheus")
        victim = next(name for name in topology.workers if topology.worker_node(name) == ti["hostname"])
        survivor = next(name for name in topology.workers if name != victim)
        began = time.monotonic()
        killed = topology.kill_component(victim)
        print(f"\n[info] SIGKILLed {victim} ({len(killed)} processes) while probe_checks try "
              f"{ti['try_number']} ran on it (task pid {ti['pid']})")
        run = wait_for_run(topology, "health_sweep", run_id, FAILOVER_TIMEOUT_S, retries_expected=True)
    finally:
        call(base, "DELETE", "/sandbox/faults")
    print(f"[timing] run finished {time.monotonic() - began:.1f} s after the kill")

    assert ti["pid"] in killed, "the task process itself died with its worker"
    assert run["state"] == "success"
    probe = next(ti for ti in task_instances(topology, "health_sweep", run_id) if ti["task_id"] == "probe_checks")
    tries = topology.api("GET", f"{run_path('health_sweep', run_id)}/taskInstances/probe_checks/0/tries")
    history = [(t["try_number"], t["state"], t["hostname"]) for t in tries["task_instances"]]
    print(f"[info] probe_checks tries: {history}")
    assert (probe["state"], probe["try_number"], probe["hostname"]) == (
        "success", ti["try_number"] + 1, topology.worker_node(survivor)), history
    assert (ti["try_number"], "failed", topology.worker_node(victim)) in history
    # Results are upserted per check and run: the retry replaced, never added.
    assert sorted(results_of(support_db, run_id)) == sorted(catalog_keys)
    assert side_effects(base) == before


# --- Forms and human-in-the-loop steps over the API -----------------------------------------------


def form_conf(dag_id: str, now: datetime) -> dict[str, Any] | None:
    """What an analyst fills into a DAG's trigger form here; None for DAGs triggered without one."""
    at = (lambda seconds: (now + timedelta(seconds=seconds)).isoformat())  # noqa: E731
    return {
        # A planned outage a minute from now: announce, remind, in progress, completed (deferred waits).
        "outage_comms": {"action": "announce", "service": "orders-api", "kind": "planned", "severity": "minor",
                         "start": at(40), "expected_end": at(70), "remind_minutes": 0,
                         "impact": "Checkout pauses for a database upgrade", "workaround": "Retry after 10:00"},
        # A privileged joiner: the approval goes to priya's manager, never to priya.
        "user_lifecycle": {"action": "joiner", "employee_id": "E1053", "role_template": "admin",
                           "effective_date": now.date().isoformat(), "on_behalf_of": "dave"},
        # The campaign of the quarter; its reviewers answer below.
        "access_review": {"campaign": f"{now.year}-Q{(now.month - 1) // 3 + 1}"},
    }.get(dag_id)


def hitl_answer(detail: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Approve (or keep everything as its default proposes): the chosen option and the params."""
    options = detail["options"]
    chosen = next((o for o in ("approve", "Approve", "OK") if o in options), options[0])
    params = {name: (spec.get("value") if isinstance(spec, dict) else spec)
              for name, spec in (detail.get("params") or {}).items()}
    return [chosen], params


class Respondents:
    """Answers every pending human-in-the-loop step over the REST API as its assignee (FAB users).

    Once per DAG, a demo user who is *not* assigned tries first, and must be refused (403).
    """

    def __init__(self, topology: DistributedAirflow) -> None:
        from prep_support.roles import DEMO_USERS

        self.topology = topology
        self.users = list(DEMO_USERS)
        self.tokens: dict[str, str] = {}
        self.answered: list[tuple[str, str, int, str]] = []  # dag, task, map index, by whom
        self.refused: dict[str, tuple[str, int]] = {}  # dag -> (user, status)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.topology.token(user, user)
        return self.tokens[user]

    def answer_pending(self) -> None:
        details = self.topology.api("GET", "/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false"
                                           "&limit=1000")["hitl_details"]
        for detail in details:
            ti = detail["task_instance"]
            if ti["state"] != "awaiting_input":
                continue
            path = (f"{run_path(ti['dag_id'], ti['dag_run_id'])}/taskInstances/{ti['task_id']}/"
                    f"{ti['map_index']}/hitlDetails")
            assignees = [user["id"] for user in detail["assigned_users"]]
            chosen, params = hitl_answer(detail)
            body = {"chosen_options": chosen, "params_input": params}
            stranger = next((u for u in self.users if u not in assignees), None)
            if assignees and stranger and ti["dag_id"] not in self.refused:
                self.refused[ti["dag_id"]] = (stranger, status_as(self.topology, self.token(stranger), "PATCH",
                                                                  path, body))
            assignee = next(user for user in assignees if user in self.users) if assignees else "admin"
            token = self.token(assignee) if assignee != "admin" else self.topology.token()
            status = status_as(self.topology, token, "PATCH", path, body)
            assert status == 200, f"{assignee} could not answer {ti['dag_id']}.{ti['task_id']}: HTTP {status}"
            self.answered.append((ti["dag_id"], ti["task_id"], ti["map_index"], assignee))


def outage_announced_everywhere(base: str, _support_db: Any, run: dict[str, Any]) -> None:
    incidents = call(base, "GET", "/statuspage/_sandbox/state")["incidents"]
    [maintenance] = [i for i in incidents
                     if (i.get("metadata") or {}).get("prep_support", {}).get("key", "").startswith("orders-api-")]
    assert maintenance["status"] == "completed", maintenance
    messages = call(base, "GET", "/slack/_sandbox/messages")["messages"]
    # One announcement on Slack (edited at completion), the reminder and progress in its thread.
    threads = {m.get("thread_ts") for m in messages if "Outage id: orders-api-" in m["text"] and m.get("thread_ts")}
    assert len(threads) == 1, threads
    assert len([m for m in messages if m["ts"] in threads]) == 1


def joiner_has_the_role_everywhere(base: str, _support_db: Any, _run: dict[str, Any]) -> None:
    users = {u["login"].split("@")[0]: u for u in call(base, "GET", "/okta/_sandbox/state")["users"]}
    # A new Okta user without a password is PROVISIONED (active, awaiting their first login).
    assert users["priya"]["status"] in ("ACTIVE", "PROVISIONED") and "app-admins" in users["priya"]["groups"]


def campaign_published(base: str, _support_db: Any, run: dict[str, Any]) -> None:
    titles = {page["title"] for page in call(base, "GET", "/confluence/_sandbox/pages")["pages"]}
    assert f"Access review {run['conf']['campaign']}" in titles, titles


def runbooks_published(base: str, _support_db: Any, _run: dict[str, Any]) -> None:
    titles = {page["title"] for page in call(base, "GET", "/confluence/_sandbox/pages")["pages"]}
    assert "How do I? Support knowledge base" in titles and any(t.startswith("Runbook: ") for t in titles)


SANDBOX_EFFECTS = {"outage_comms": outage_announced_everywhere, "user_lifecycle": joiner_has_the_role_everywhere,
                   "access_review": campaign_published, "support_docs": runbooks_published}
# Driven through the browser instead (tests/integration/test_airflow_ui.py).
BROWSER_DAGS = {"uat_cycle"}


# A data_quality run is red when its day's data fails a `fail` check (the sample estate has such days): then
# only those tasks failed, each on its first try (no retry for data), and reconciliation still ran.
DATA_FAILURE_TASKS = {"validate_suite", "fail_run_when_validation_failed"}


def finished_as_designed(topology: DistributedAirflow, dag_id: str, run: dict[str, Any]) -> bool:
    if run["state"] == "success":
        return True
    if dag_id != "data_quality" or run["state"] != "failed":
        return False
    tasks = topology.api("GET", run_path(dag_id, run["dag_run_id"]) + "/taskInstances?limit=1000")["task_instances"]
    failed = [ti for ti in tasks if ti["state"] == "failed"]
    acted = {ti["task_id"]: ti["state"] for ti in tasks if ti["task_id"] in ("reconcile_quality", "send_notifications")}
    return ({ti["task_id"] for ti in failed} == DATA_FAILURE_TASKS and all(ti["try_number"] == 1 for ti in failed)
            and acted == {"reconcile_quality": "success", "send_notifications": "success"})


def test_every_other_dag_runs_over_the_api(
    topology: DistributedAirflow, support_db: Any, catalog_keys: set[str]
) -> None:
    base = topology.sandbox.base_url
    if topology.directory is None:
        service_missing("slapd is not installed: access_review and user_lifecycle need the directory")
    topology.create_roles(demo_users=True)
    respondents = Respondents(topology)
    dags = topology.api("GET", "/api/v2/dags?limit=1000")["dags"]
    others = [dag["dag_id"] for dag in dags if dag["dag_id"] != "health_sweep" and dag["dag_id"] not in BROWSER_DAGS]
    errors = topology.api("GET", "/api/v2/importErrors")["import_errors"]
    assert errors == [], f"import errors: {[(e['filename'], e['stack_trace'][-300:]) for e in errors]}"
    triggered = {}
    now = datetime.now(UTC)
    for dag_id in others:
        conf = form_conf(dag_id, now)
        details = topology.api("GET", f"/api/v2/dags/{dag_id}/details")
        if conf is None and not triggerable_without_form(details):
            raise AssertionError(f"{dag_id} needs a form: add its values to form_conf()")
        topology.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = topology.api("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                           {"logical_date": now.isoformat(), "conf": conf or {}})
        triggered[dag_id] = run["dag_run_id"]
    for dag_id, run_id in triggered.items():
        began = time.monotonic()
        # Unpausing also started the latest scheduled run: wait for both, answering their approvals.
        runs = wait_idle(topology, dag_id, on_poll=respondents.answer_pending)
        assert all(finished_as_designed(topology, dag_id, run) for run in runs), (dag_id, runs)
        run = next(run for run in runs if run["dag_run_id"] == run_id)
        if dag_id in EFFECTS:
            EFFECTS[dag_id](support_db, catalog_keys, run)
        if dag_id in SANDBOX_EFFECTS:
            SANDBOX_EFFECTS[dag_id](base, support_db, run)
        print(f"[timing] {dag_id}: {len(runs)} runs finished {time.monotonic() - began:.1f} s after the last wait")
    print(f"[info] answered: {respondents.answered}; refused strangers: {respondents.refused}")
    asked = {dag_id for dag_id, *_ in respondents.answered}
    assert {"access_review", "user_lifecycle"} <= asked
    for dag_id in asked:  # someone not assigned was refused on each DAG that asked
        assert respondents.refused[dag_id][1] == 403, (dag_id, respondents.refused[dag_id])


# --- Roles (issue 7 item 2): FAB roles and DAG-level access_control, over the REST API ----------


def status_as(topology: DistributedAirflow, token: str, method: str, path: str, payload: Any = None) -> int:
    """The HTTP status of one REST API call made with a user's JWT."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{topology.api_url}{path}", method=method, data=None if payload is None else json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_roles_decide_who_may_see_trigger_clear_and_backfill(topology: DistributedAirflow) -> None:
    from prep_support.roles import DEMO_USERS

    # The roles were made before the DAGs were stored (DistributedAirflow.start); again, idempotently,
    # with one demo user per role (password = user name).
    topology.create_roles(demo_users=True)
    tokens = {user: topology.token(user, user) for user in DEMO_USERS}
    sweep = "/api/v2/dags/health_sweep"
    now = datetime.now(UTC)
    clear_body = {"dry_run": True, "only_failed": True}
    backfill_body = {"dag_id": "health_sweep", "from_date": (now - timedelta(hours=1)).isoformat(),
                     "to_date": now.isoformat(), "reprocess_behavior": "failed"}
    seen = {user: {"read": status_as(topology, token, "GET", sweep),
                   "runs": status_as(topology, token, "GET", f"{sweep}/dagRuns"),
                   "clear": status_as(topology, token, "POST", f"{sweep}/clearTaskInstances", clear_body),
                   "backfill": status_as(topology, token, "POST", "/api/v2/backfills/dry_run", backfill_body)}
            for user, token in tokens.items()}
    # Triggering last: runs by analyst and on-call are made (one logical date each: they are unique per DAG).
    for offset, user in enumerate(("viewer", "reviewer", "oncall", "analyst")):
        body = {"logical_date": (now + timedelta(seconds=offset)).isoformat(), "conf": {}}
        seen[user]["trigger"] = status_as(topology, tokens[user], "POST", f"{sweep}/dagRuns", body)
    print(f"\n[info] health_sweep as each role: {seen}")

    assert seen["viewer"] == {"read": 200, "runs": 200, "clear": 403, "backfill": 403, "trigger": 403}
    assert seen["analyst"] == {"read": 200, "runs": 200, "clear": 200, "backfill": 200, "trigger": 200}
    assert seen["oncall"] == {"read": 200, "runs": 200, "clear": 200, "backfill": 200, "trigger": 200}
    assert seen["reviewer"]["read"] in (403, 404) and seen["reviewer"]["runs"] in (403, 404)
    assert {seen["reviewer"][action] for action in ("clear", "backfill", "trigger")} <= {403, 404}
    # The reviewer sees no support DAG in the list either (none of the DAGs that landed is theirs).
    listed = status_as(topology, tokens["reviewer"], "GET", "/api/v2/dags")
    assert listed in (200, 403)
    if listed == 200:
        assert "health_sweep" not in str(topology._http("GET", "/api/v2/dags", None, token=tokens["reviewer"]))


# --- The Airflow UI in a real browser (issue 7 item 3): a form, then a human-in-the-loop step -------


def ui_login(page: Any, base_url: str, user: str) -> None:
    """FAB's login form, as a person fills it (password = user name for the demo users)."""
    page.goto(f"{base_url}/")
    page.fill("#username", user)
    page.fill("#password", user)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/**")
    page.wait_for_load_state("networkidle")


def ui_fill_date_time(page: Any, dialog: Any, label: str, when: datetime) -> None:
    """The form's date-time picker: open it under its label, type the date and time (UTC), close it."""
    dialog.locator("label", has_text=label).locator("xpath=ancestor::*[@data-part='root'][1]").get_by_text(
        "Select date and time").click()
    picker = page.locator("[data-scope=popover][data-state=open]")
    picker.locator("input[placeholder='YYYY/MM/DD']").fill(when.strftime("%Y/%m/%d"))
    picker.locator("input[placeholder='HH:mm']").fill(when.strftime("%H:%M"))
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")


def test_analyst_runs_a_uat_cycle_from_the_form_and_the_owner_signs_it_off_in_the_browser(
    topology: DistributedAirflow, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    from tests.browser import DOCS, chromium_page, require_chromium, save_small_png

    require_chromium()
    topology.create_roles(demo_users=True)
    base, release = topology.ui_url, f"2026.12-ui-{int(time.time())}"
    # The picker has minutes: the next whole minute at least 45 s away.
    deadline = (datetime.now(UTC) + timedelta(seconds=105)).replace(second=0, microsecond=0)
    with chromium_page(request) as page:
        ui_login(page, base, "analyst")
        page.goto(f"{base}/dags/uat_cycle")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.locator("[role=dialog][data-state=open]")
        expect(dialog.get_by_text("Trigger Dag - uat_cycle")).to_be_visible()
        dialog.locator("#element_release").fill(release)
        dialog.locator("#element_business_owner").fill("dave")  # four eyes: not the analyst who starts it
        ui_fill_date_time(page, dialog, "Deadline", deadline)
        save_small_png(page, DOCS / "ui-trigger-form.png")
        dialog.get_by_test_id("trigger-dag-submit").click()
        page.wait_for_url(f"{base}/dags/uat_cycle/runs/**")
        run_id = urllib.parse.unquote(page.url.split("/runs/", 1)[1].split("/")[0])
        run = topology.api("GET", run_path("uat_cycle", run_id))
        assert run["conf"]["release"] == release and run["conf"]["business_owner"] == "dave"
        assert run["triggering_user_name"] == "analyst"
        assert datetime.fromisoformat(run["conf"]["deadline"].replace("Z", "+00:00")) == deadline

        def waiting_for_signoff() -> bool:
            raise_on_failed_tasks(topology, "uat_cycle", run_id)
            states = {ti["task_id"]: ti["state"] for ti in task_instances(topology, "uat_cycle", run_id)}
            return states.get("business_signoff") == "awaiting_input"

        topology.wait_until("the sign-off to wait for the business owner", waiting_for_signoff, 240,
                            interval_s=2)
        page.context.clear_cookies()  # the business owner signs off in their own session
        ui_login(page, base, "dave")
        page.goto(f"{base}/dags/uat_cycle/runs/{urllib.parse.quote(run_id, safe='')}"
                  "/tasks/business_signoff/required_actions")
        expect(page.get_by_text(f"Release {release}", exact=True)).to_be_visible(timeout=30_000)  # a new login
        expect(page.get_by_text("not done").first).to_be_visible()  # the deadline passed with open cases
        page.locator("#element_comment").fill("Accepted: the open cases are retested after go-live")
        save_small_png(page, DOCS / "ui-signoff.png")
        page.get_by_role("button", name="approve", exact=True).click()
        finished = wait_for_run(topology, "uat_cycle", run_id, timeout_s=RUN_TIMEOUT_S)

    assert finished["state"] == "success"
    signoff = topology.api("GET", f"{run_path('uat_cycle', run_id)}/taskInstances/business_signoff/-1/hitlDetails")
    assert signoff["chosen_options"] == ["approve"] and signoff["responded_by_user"]["name"] == "dave"
    issues = call(topology.sandbox.base_url, "GET", "/jira/_sandbox/issues")["issues"]
    [ticket] = [i for i in issues if f"prep-support:uat:{release}" in i["fields"]["labels"]
                and i["issuetype"] != "Sub-task"]
    assert ticket["status"] == "Done"


# --- Who asked is who logged in (issue 19): requester from the token, four eyes on the approval ------


def run_as(topology: DistributedAirflow, token: str, dag_id: str, conf: dict[str, Any]) -> str:
    """Trigger a run with a user's JWT, as their UI session or script would; its run id."""
    body = {"logical_date": datetime.now(UTC).isoformat(), "conf": conf}
    return topology._http("POST", f"/api/v2/dags/{dag_id}/dagRuns", body, token=token)["dag_run_id"]


def lifecycle_records(support_db: Any, key: str) -> set[tuple[str, str | None]]:
    with support_db.connect() as connection:
        return set(connection.execute(text("SELECT requested_by, approved_by FROM lifecycle_changes "
                                           "WHERE request_key = :key"), {"key": key}).all())


def test_the_requester_is_who_logged_in_and_someone_else_approves(topology: DistributedAirflow,
                                                                  support_db: Any) -> None:
    """alice asks for admin rights for omar, her report: she is not asked, her answer is refused, bob's counts."""
    if topology.directory is None:
        service_missing("slapd is not installed: user_lifecycle needs the directory")
    topology.create_roles(demo_users=True)
    base, day = topology.sandbox.base_url, "2027-01-04"
    tokens = {user: topology.token(user, user) for user in ("alice", "bob", "carol")}
    topology.api("PATCH", "/api/v2/dags/user_lifecycle", {"is_paused": False})
    # The form (and a stray 'requested_by' in the conf) names other people: neither counts.
    run_id = run_as(topology, tokens["alice"], "user_lifecycle", {
        "action": "joiner", "employee_id": "E1051", "role_template": "admin", "effective_date": day,
        "on_behalf_of": "dave", "requested_by": "dave"})
    assert topology.api("GET", run_path("user_lifecycle", run_id))["triggering_user_name"] == "alice"
    approval = f"{run_path('user_lifecycle', run_id)}/taskInstances/approve_privileged/-1/hitlDetails"

    def waiting() -> dict | None:  # a try may fail on a busy machine and be retried: only a failed run stops
        assert topology.api("GET", run_path("user_lifecycle", run_id))["state"] != "failed"
        details = topology.api("GET", "/api/v2/dags/user_lifecycle/dagRuns/~/hitlDetails?response_received=false")
        return next((d for d in details["hitl_details"] if d["task_instance"]["dag_run_id"] == run_id
                     and d["task_instance"]["state"] == "awaiting_input"), None)

    detail = topology.wait_until("the privileged-access approval", waiting, RUN_TIMEOUT_S, interval_s=1)
    assert [user["id"] for user in detail["assigned_users"]] == ["bob", "carol"]  # the manager asked: left out
    answer = {"chosen_options": ["Approve"], "params_input": {}}
    assert status_as(topology, tokens["alice"], "PATCH", approval, answer) == 403
    assert status_as(topology, tokens["bob"], "PATCH", approval, answer) == 200
    assert wait_for_run(topology, "user_lifecycle", run_id, retries_expected=True)["state"] == "success"

    assert topology.api("GET", approval)["responded_by_user"]["name"] == "bob"
    assert lifecycle_records(support_db, f"joiner:E1051:{day}") == {("alice", "bob")}
    [ticket] = [i for i in call(base, "GET", "/jira/_sandbox/issues")["issues"]
                if f"prep-support:access:lifecycle:joiner:E1051:{day}" in i["fields"]["labels"]]
    assert "requested by alice on behalf of dave." in ticket["fields"]["description"]
    assert "Privileged access approved by bob." in ticket["comments"][0]["body"]

    # A script with carol's token: carol asked (omar back to analyst: nothing privileged, no approval).
    run_id = run_as(topology, tokens["carol"], "user_lifecycle", {
        "action": "mover", "employee_id": "E1051", "role_template": "analyst", "effective_date": day})
    assert wait_for_run(topology, "user_lifecycle", run_id, retries_expected=True)["state"] == "success"
    assert lifecycle_records(support_db, f"mover:E1051:{day}") == {("carol", None)}


# Each trigger form, and its optional choice whose empty value needs a readable label.
FORMS = {"user_lifecycle": "role_template", "outage_comms": "service", "uat_cycle": None, "access_review": None}


def test_trigger_forms_read_well_and_show_no_null_label(topology: DistributedAirflow,
                                                        request: pytest.FixtureRequest) -> None:
    """Every form DAG's trigger form in Chromium: sections open, no 'null' anywhere (docs/ui-form-<dag>.png)."""
    import re

    from playwright.sync_api import expect

    from tests.browser import DOCS, chromium_page, require_chromium, save_small_png

    require_chromium()
    base = topology.ui_url
    with chromium_page(request) as page:
        ui_login(page, base, "admin")  # the only login that may trigger access_review (password = name)
        for dag_id, choice in FORMS.items():
            page.goto(f"{base}/dags/{dag_id}")
            page.get_by_role("button", name="Trigger").first.click()
            dialog = page.locator("[role=dialog][data-state=open]")
            expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
            texts = [dialog.inner_text()]
            # Open each folded section in turn (one is open at a time); not "Advanced Options" (the run's conf as
            # JSON, where null is null). Then the first again: the fields to fill, and the choice to look at.
            sections = dialog.locator("[data-part=item-trigger]")
            titles = [t for t in sections.all_inner_texts() if "advanced" not in t.lower()]
            for title in [*titles[1:], *titles[:1]]:
                section = sections.filter(has_text=title).first
                if section.get_attribute("aria-expanded") == "false":
                    section.click()
                texts.append(dialog.inner_text())
            if choice:
                dialog.locator(f"#element_{choice}").click()
                options = page.get_by_role("option")
                expect(options.first).to_be_visible()
                texts += options.all_inner_texts()
            save_small_png(page, DOCS / f"ui-form-{dag_id}.png")
            nulls = [text for text in texts if re.search(r"\bnull\b", text, re.IGNORECASE)]
            assert not nulls, f"{dag_id}'s form shows 'null': {nulls}"
            page.keyboard.press("Escape")

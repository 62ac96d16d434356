"""One migrated AIRFLOW_HOME and one sandbox for the whole test session.

The environment is set before anything imports Airflow, so every test (and every
``dag.test()`` run) sees the same temporary home, DAG folder and Connections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import service_missing

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="prep-support-airflow-"))
SUPPORT_DB_PATH = AIRFLOW_HOME / "support.db"

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        # Our DAGs, and a second bundle of test-only DAGs (tests/fixture_dags) for dag.test() of probes.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([
            {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
            {"name": "test-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
             "kwargs": {"path": str(ROOT / "tests" / "fixture_dags")}},
        ]),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PREP_SUPPORT_CACHE_DIR": str(AIRFLOW_HOME / "cache"),
        "AIRFLOW_CONN_SUPPORT_DB": json.dumps({"conn_type": "sqlite", "host": str(SUPPORT_DB_PATH)}),
    }
)
os.environ.pop("PREP_SUPPORT_CATALOG", None)

POSTGRES_ADMIN_URL = os.environ.get("PREP_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


CONFORMANCE_MODULE = "tests/test_conformance.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The conformance tests check what every other test exchanged with the sandbox: they run last."""
    items.sort(key=lambda item: item.nodeid.startswith(CONFORMANCE_MODULE))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """What the conformance tests validated, per system, and the spec deviations they allowed."""
    from tests.conformance import CHECKED, report

    checked = config.stash.get(CHECKED, None)
    if checked is not None:
        terminalreporter.write_sep("-", "conformance to the published API specs")
        for line in report(checked):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME / "airflow.db"


@pytest.fixture(scope="session")
def support_engine():
    """The support database (SQLite under the session's AIRFLOW_HOME), migrated to head."""
    from hooks.database import DatabaseHook
    from prep_support.migrate import upgrade

    engine = DatabaseHook(conn_id="support_db").engine
    upgrade(engine)
    return engine


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The sandbox on free loopback ports, its Connections in the environment."""
    from sandbox.server import SandboxProcess

    with SandboxProcess(tmp_path_factory.mktemp("sandbox")) as process:
        os.environ.update(process.connection_env())
        yield process


def set_jira_deployment(sandbox, deployment: str, index_lag_s: float | None = None) -> None:
    """Make the sandbox's Jira behave as Jira Cloud or as Server/Data Center (sandbox/jira.py)."""
    from tests.sandbox_client import call

    call(sandbox.base_url, "PUT", "/jira/_sandbox/deployment",
         {"deploymentType": deployment, **({} if index_lag_s is None else {"index_lag_s": index_lag_s})})


@pytest.fixture(params=["Server", "Cloud"])
def jira_deployment(sandbox, request) -> Iterator[str]:
    """Run the test against Jira Server/Data Center, then against Jira Cloud; Server again afterwards."""
    set_jira_deployment(sandbox, request.param)
    yield request.param
    set_jira_deployment(sandbox, "Server")


@pytest.fixture
def jira_cloud(sandbox) -> Iterator[str]:
    """The sandbox's Jira behaves as Jira Cloud for this test; Server/Data Center again afterwards."""
    set_jira_deployment(sandbox, "Cloud")
    yield "Cloud"
    set_jira_deployment(sandbox, "Server")


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real OpenLDAP slapd seeded with sandbox/directory_seed.py; AIRFLOW_CONN_LDAP_DEFAULT points at it.

    Tests that change the directory call ``slapd.reset()`` afterwards (see tests/plugins/test_directory.py).
    """
    from sandbox.ldap_server import SlapdProcess, slapd_available

    if not slapd_available():
        service_missing("OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)")
    with SlapdProcess(tmp_path_factory.mktemp("slapd")) as process:
        os.environ.update(process.connection_env())
        yield process


@pytest.fixture
def estate(sandbox) -> Iterator:
    """The sandbox's estate, reset to its seeded state after the test."""
    yield sandbox
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{sandbox.base_url}/estate/reset", method="POST"), timeout=10)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"prep_support_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        service_missing(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {error.orig}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_CAPTURED = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep what each phase of a test printed and logged, for the secret scan at its teardown."""
    outcome = yield
    item.stash.setdefault(_CAPTURED, []).extend(outcome.get_result().sections)


@pytest.fixture(autouse=True)
def no_secret_in_what_a_dag_run_leaves(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that runs a DAG (it uses airflow_db) is scanned for the Connections' secrets afterwards:
    output, task logs, support database rows, and what the sandbox's trackers, chats and pages got."""
    if "airflow_db" not in request.fixturenames:
        yield
        return
    import time

    from tests.secret_scan import leaks

    started = time.time() - 1
    yield
    sandbox = request.getfixturevalue("sandbox") if "sandbox" in request.fixturenames else None
    found = leaks(request.node.stash.get(_CAPTURED, []), AIRFLOW_HOME, started, SUPPORT_DB_PATH,
                  sandbox.base_url if sandbox is not None else None)
    assert not found, "a secret leaked: " + "; ".join(found)

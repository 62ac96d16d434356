"""`make distributed`: the topology of docker-compose.yaml, as processes on this machine.

What the compose file runs in containers is started here natively, the same way: a fresh
metadata database and a fresh support database on the local PostgreSQL (created now, dropped at
the end), a Redis database of its own as the Celery broker (results on the metadata database),
the sandbox standing in for every external system, the FAB auth manager with an admin user, then
``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
``celery worker``s. They share one temporary AIRFLOW_HOME whose airflow.cfg this script writes,
and each is waited for until healthy. Ctrl-C, SIGTERM or a failure stops every process it started
(whole process trees) and drops the databases.

It is also the library the integration test uses::

    with DistributedAirflow(settings=QUICK_FAILOVER) as topology:
        topology.api("GET", "/api/v2/dags")

Only the standard library at module level: the workers import ``worker_hostname`` from here.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.ldap_server import SlapdProcess
    from sandbox.server import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("PREP_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PREP_REDIS_URL", "redis://127.0.0.1:6379")
# FAB, with human-in-the-loop assignees named by username (plugins/auth_managers/support_fab.py).
FAB_AUTH_MANAGER = "auth_managers.support_fab.SupportFabAuthManager"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
ADMIN = {"username": "admin", "password": "admin"}
WORKERS = ("worker1", "worker2")
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
# Redis databases tried for the broker, highest first (0 is everybody's default); the one taken is
# marked with this key so two topologies on one machine never share a broker.
REDIS_DBS = range(15, 0, -1)
REDIS_OWNER_KEY = "prep-support:distributed:owner"

# Failover in seconds rather than minutes, for the tests and for trying it out: a task whose worker
# died is failed (and retried) 20 s after its last heartbeat instead of 300 s, and a restarted
# scheduler adopts the running tasks of its predecessor within 10 s instead of 300 s.
QUICK_FAILOVER: dict[str, dict[str, str]] = {
    "scheduler": {
        "task_instance_heartbeat_timeout": "20",
        "task_instance_heartbeat_timeout_detection_interval": "2",
        "orphaned_tasks_check_interval": "10",
    },
    # Tasks heartbeat every 3 s (default 5), well inside the 20 s above even on a busy machine.
    "workers": {"min_heartbeat_interval": "3"},
}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers: their Celery node name, e.g. ``worker1@host``.

    Task instances record the hostname of the worker that ran them. Two workers on one machine
    would both record the machine's name; this keeps them apart, as separate machines would be.
    """
    return os.environ.get("PREP_WORKER_HOSTNAME") or socket.getfqdn()


class TopologyError(RuntimeError):
    """A component could not be started, or died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Processes ----------------------------------------------------------------------------------


def _die_with_launcher() -> None:
    """In the child before exec: get SIGTERM when the launcher dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def process_tree(pid: int) -> dict[int, str]:
    """``pid`` and all its descendants, with their start times (to recognise them later)."""
    if not Path("/proc").is_dir():
        return {}
    table = _process_table()
    tree = {pid: table[pid][1]} if pid in table else {}
    changed = True
    while changed:
        changed = False
        for child, (parent, started) in table.items():
            if parent in tree and child not in tree:
                tree[child] = started
                changed = True
    return tree


def _signal_tree(tree: dict[int, str], sig: int) -> None:
    """Signal the processes of a snapshot that still are the same processes (pid not reused)."""
    table = _process_table() if tree else {}
    for pid, started in tree.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


class Component:
    """One long-running Airflow command in its own session, logging to ``{log_dir}/{name}.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_launcher,
            )  # fmt: skip

    def tree(self) -> dict[int, str]:
        """This component's processes, including task runners that put themselves in their own group."""
        return process_tree(self.process.pid) if self.alive() else {}

    def signal(self, sig: int) -> dict[int, str]:
        """Send ``sig`` to the whole process tree; return the snapshot that was signalled."""
        tree = self.tree()
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
        _signal_tree(tree, sig)
        return tree

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def stop_components(components: Iterable[Component], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every component's process tree at once, SIGKILL what is left after ``timeout_s``."""
    snapshots = [(component, component.signal(signal.SIGTERM)) for component in components]
    deadline = time.monotonic() + timeout_s
    for component, tree in snapshots:
        if component.process is not None:
            try:
                component.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        while time.monotonic() < deadline and _still_running(tree):
            time.sleep(0.2)
        if component.alive():
            component.signal(signal.SIGKILL)
        _signal_tree(tree, signal.SIGKILL)
        if component.process is not None:
            component.process.wait()


def _still_running(tree: dict[int, str]) -> bool:
    if not tree:
        return False
    table = _process_table()
    # A zombie child of ours is not running; its parent (the component) reaps it.
    return any(pid in table and table[pid][1] == started and not _is_zombie(pid) for pid, started in tree.items())


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


# --- PostgreSQL and Redis ---------------------------------------------------------------------


class Postgres:
    """Databases created on a PostgreSQL server, dropped again by :meth:`drop_all`."""

    def __init__(self, admin_url: str) -> None:
        # Accept SQLAlchemy spellings too (PREP_TEST_POSTGRES_URL uses postgresql+psycopg2://).
        self.admin_url = admin_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        self.created: list[str] = []

    def _execute(self, statement: str) -> None:
        import psycopg2  # in the lock; the only non-stdlib import, and only where a database is made

        connection = psycopg2.connect(self.admin_url, connect_timeout=5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create(self, name: str) -> str:
        """Create database ``name``; return its URL (``postgresql://...``)."""
        self._execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url(name)

    def url(self, name: str, scheme: str = "postgresql") -> str:
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))

    def drop_all(self) -> None:
        while self.created:
            self._execute(f'DROP DATABASE IF EXISTS "{self.created.pop()}" WITH (FORCE)')


def redis_call(url: str, *commands: tuple[Any, ...]) -> list[Any]:
    """Send Redis commands on one connection (RESP2) and return their replies; errors are raised."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=10) as sock:
        if parts.password:
            commands = (("AUTH", urllib.parse.unquote(parts.password)), *commands)
        payload = b""
        for command in commands:
            payload += b"*%d\r\n" % len(command)
            for argument in command:
                data = str(argument).encode()
                payload += b"$%d\r\n%s\r\n" % (len(data), data)
        sock.sendall(payload)
        reader = sock.makefile("rb")
        replies = [_redis_reply(reader) for _ in commands]
    errors = [reply for reply in replies if isinstance(reply, Exception)]
    if errors:
        raise errors[0]
    return replies[1:] if parts.password else replies


def _redis_reply(reader: IO[bytes]) -> Any:
    line = reader.readline()
    if not line:
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(f"Redis: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2].decode()
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_redis_reply(reader) for _ in range(size)]
    raise ConnectionError(f"unexpected Redis reply {line!r}")


# Take a database only if it is empty or still marked by an owner that is gone (compare-and-set,
# atomic in Redis), then flush it and mark it ours.
_CLAIM_SCRIPT = """
local owner = redis.call('GET', KEYS[1])
if redis.call('DBSIZE') == 0 or (owner and owner == ARGV[2]) then
  redis.call('FLUSHDB')
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def claim_redis_db(url: str, owner: str) -> int:
    """A Redis database number of our own for the broker, flushed; see :data:`REDIS_DBS`."""
    for db in REDIS_DBS:
        _, current = redis_call(url, ("SELECT", db), ("GET", REDIS_OWNER_KEY))
        stale = current if current and _owner_is_gone(current) else ""
        _, claimed = redis_call(url, ("SELECT", db), ("EVAL", _CLAIM_SCRIPT, 1, REDIS_OWNER_KEY, owner, stale))
        if claimed == 1:
            return db
    raise TopologyError(f"no free Redis database among {list(REDIS_DBS)} at {url}")


def _owner_is_gone(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --- The topology -------------------------------------------------------------------------------


class DistributedAirflow:
    """The whole distributed deployment on this machine, started by :meth:`start`, removed by :meth:`stop`.

    :param settings: airflow.cfg values over ours, ``{section: {key: value}}`` (e.g. :data:`QUICK_FAILOVER`).
    :param api_port: the api-server's port; 0 picks a free one.
    :param sandbox_port: the sandbox's HTTP port; 0 picks a free one.
    :param keep_files: leave AIRFLOW_HOME and the logs in place after :meth:`stop`.
    :param extra_env: more environment for every component (e.g. a DAG's own settings).
    """

    def __init__(self, *, settings: dict[str, dict[str, str]] | None = None, api_host: str = "127.0.0.1",
                 api_port: int = 0, sandbox_port: int = 0, workers: Iterable[str] = WORKERS,
                 worker_concurrency: int = 2, postgres_url: str = POSTGRES_URL, redis_url: str = REDIS_URL,
                 work_dir: Path | None = None, keep_files: bool = False, extra_env: dict[str, str] | None = None,
                 log: Callable[[str], None] = lambda message: print(message, flush=True)) -> None:
        self.settings = settings or {}
        self.api_host = api_host
        self.api_port = api_port or free_port()
        self.sandbox_port = sandbox_port
        self.workers = tuple(workers)
        self.worker_concurrency = worker_concurrency
        self.redis_url = redis_url.rstrip("/")
        self.postgres = Postgres(postgres_url)
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="prep-distributed-"))
        self.keep_files = keep_files
        self.extra_env = extra_env or {}
        self.log = log
        self.home = self.work_dir / "airflow"
        self.log_dir = self.work_dir / "logs"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        # Where people (and the browser tests) open the UI: the [api] base_url, whose host the login cookie is for.
        self.ui_url = (f"http://{'localhost' if self.api_host in ('127.0.0.1', '0.0.0.0') else self.api_host}"
                       f":{self.api_port}")
        self.scheduler_health_port = free_port()
        self.suffix = secrets.token_hex(4)
        self.metadata_db = f"prep_airflow_{self.suffix}"
        self.support_db = f"prep_support_{self.suffix}"
        self.support_db_url = ""
        self.redis_db: int | None = None
        self.redis_owner = f"{socket.gethostname()}:{os.getpid()}:{self.suffix}"
        self.sandbox: SandboxProcess | None = None
        self.directory: SlapdProcess | None = None
        self.components: dict[str, Component] = {}
        self._steps: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        self._token: str | None = None
        self._previous_sigterm: Any = None
        self.timings: dict[str, float] = {}

    # -- lifecycle

    def __enter__(self) -> DistributedAirflow:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> DistributedAirflow:
        """Create the databases, start everything and wait until every component is healthy."""
        self._stop_on_sigterm()
        began = time.monotonic()
        try:
            pending = self._prepare()
            # FAB's roles and permissions are synced by `users create` and again by the api-server as it
            # starts; run concurrently, the two insert the same rows (a unique violation): user first.
            self._wait_process("users-create", pending.pop("users-create"))
            # Our roles (plugins/prep_support/roles.py) before the dag-processor stores the DAGs: their
            # access_control names them, and FAB refuses a DAG naming a role that does not exist.
            self.create_roles()
            self.timings["prepare"] = time.monotonic() - began
            for name in (*SERVICES, *self.workers):
                self.start_component(name)
            # The support database is needed by the first task, not by the components starting.
            for name, step in pending.items():
                self._wait_process(name, step)
            self.log("Admin user created; support database migrated")
            self.wait_healthy()
            self.timings["healthy"] = time.monotonic() - began
            self.wait_for_dag_files()
            self.timings["dags_parsed"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process started (trees, SIGTERM then SIGKILL), drop the databases, free Redis."""
        errors: list[str] = []
        for step in self._steps:  # a step still running when start() failed
            if step.poll() is None:
                os.killpg(step.pid, signal.SIGKILL)
                step.wait()
        stop_components(list(self.components.values())[::-1])
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.directory is not None:
            self.directory.stop()
        try:
            self.postgres.drop_all()
        except Exception as error:  # keep cleaning up; report at the end
            errors.append(f"dropping the databases: {error}")
        if self.redis_db is not None:
            try:
                redis_call(self.redis_url, ("SELECT", self.redis_db), ("FLUSHDB",))
                self.redis_db = None
            except Exception as error:
                errors.append(f"flushing Redis database {self.redis_db}: {error}")
        if not self.keep_files:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        if errors:
            raise TopologyError("; ".join(errors))

    def _stop_on_sigterm(self) -> None:
        """SIGTERM becomes KeyboardInterrupt, so `with` blocks and fixtures unwind and stop everything."""
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) and _in_main_thread():
            def interrupt(signum: int, _frame: object) -> None:
                raise KeyboardInterrupt(signal.Signals(signum).name)

            self._previous_sigterm = signal.signal(signal.SIGTERM, interrupt)

    def _prepare(self) -> dict[str, subprocess.Popen[bytes]]:
        """Databases, broker, sandbox, airflow.cfg, migrations; return the steps still running."""
        from sandbox.ldap_server import SlapdProcess, slapd_available
        from sandbox.server import SandboxProcess

        for folder in (self.home, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.log(f"Work directory {self.work_dir}")
        metadata_url = self.postgres.create(self.metadata_db)
        self.support_db_url = self.postgres.create(self.support_db)
        self.log(f"PostgreSQL: metadata database {self.metadata_db}, support database {self.support_db}")
        self.redis_db = claim_redis_db(self.redis_url, self.redis_owner)
        self.log(f"Redis: Celery broker on database {self.redis_db} of {self.redis_url}")
        self.sandbox = SandboxProcess(self.work_dir / "sandbox", port=self.sandbox_port).start()
        self.log(f"Sandbox (stand-ins for the external systems) at {self.sandbox.base_url}")
        if slapd_available():  # the directory of access reviews and user life cycles
            self.directory = SlapdProcess(self.work_dir / "slapd").start()
            self.log(f"Directory (OpenLDAP slapd, seeded) at {self.directory.url}")
        else:
            self.log("No directory: slapd is not installed (apt-get install slapd)")
        (self.home / "airflow.cfg").write_text(self._airflow_cfg(metadata_url))
        self.env = self._environment()
        airflow = str(BIN / "airflow")
        # The CeleryExecutor must import before anything runs on it (the lock pins celery and its
        # Airflow provider separately); checked while the databases migrate, so it costs no time.
        preflight = self._run_async("celery-preflight", [str(BIN / "python"), "-c",
                                                         f"import {CELERY_APP.rpartition('.')[0]}"])
        support = self._run_async("support-migrate", [str(BIN / "python"), "-m", "prep_support.migrate", "--url",
                                                      self.postgres.url(self.support_db, "postgresql+psycopg2")])
        metadata = self._run_async("db-migrate", [airflow, "db", "migrate"])
        self._wait_process("celery-preflight", preflight)
        # With the FAB auth manager configured, this creates FAB's tables too (no `airflow fab-db migrate`).
        self._wait_process("db-migrate", metadata)
        self.log("Metadata database migrated (Airflow and FAB tables)")
        users = self._run_async("users-create", [airflow, "users", "create", "--role", "Admin",
                                                 "--username", ADMIN["username"], "--password", ADMIN["password"],
                                                 "--firstname", "Prep", "--lastname", "Support",
                                                 "--email", "admin@example.com"])
        return {"users-create": users, "support-migrate": support}

    def _airflow_cfg(self, metadata_url: str) -> str:
        database = metadata_url.split("://", 1)[1]
        trigger_log_port = free_port()
        values: dict[str, dict[str, str]] = {
            "core": {
                "dags_folder": str(ROOT / "dags"),
                "plugins_folder": str(ROOT / "plugins"),
                "executor": "CeleryExecutor",
                "auth_manager": FAB_AUTH_MANAGER,
                "load_examples": "False",
                "dags_are_paused_at_creation": "True",
                "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                # Workers run tasks through the Execution API of this api-server.
                "execution_api_server_url": f"{self.api_url}/execution/",
                "parallelism": "32",
                "max_active_tasks_per_dag": "16",
            },
            "database": {"sql_alchemy_conn": f"postgresql+psycopg2://{database}"},
            "api": {
                "host": self.api_host,
                "port": str(self.api_port),
                "base_url": self.ui_url,
                "secret_key": secrets.token_urlsafe(32),
                "workers": "1",
            },
            # One secret for every component: task tokens are signed by the api-server and checked by it.
            "api_auth": {"jwt_secret": secrets.token_urlsafe(32)},
            "celery": {
                "broker_url": f"{self.redis_url}/{self.redis_db}",
                "result_backend": f"db+postgresql://{database}",
                "worker_concurrency": str(self.worker_concurrency),
            },
            "scheduler": {
                "enable_health_check": "True",
                "scheduler_health_check_server_host": "127.0.0.1",
                "scheduler_health_check_server_port": str(self.scheduler_health_port),
            },
            # New DAG files show up within 30 s (default 300).
            "dag_processor": {"refresh_interval": "30"},
            "logging": {
                # One log folder for all, as remote logging would be: the api-server reads task logs there.
                "base_log_folder": str(self.home / "logs"),
                "trigger_log_server_port": str(trigger_log_port),
            },
        }
        for section, options in self.settings.items():
            values.setdefault(section, {}).update(options)
        parser = configparser.RawConfigParser()
        parser.read_dict(values)
        path = self.work_dir / "airflow.cfg.tmp"
        with path.open("w") as handle:
            handle.write("# Written by scripts/distributed.py for one run; removed when it stops.\n")
            parser.write(handle)
        text = path.read_text()
        path.unlink()
        return text

    def _environment(self) -> dict[str, str]:
        """The components' own environment: none of the caller's AIRFLOW_* (a test session sets its own)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(self.home),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # plugins/ for Celery's task imports and prep_support.migrate; the checkout for this module.
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "plugins"), str(ROOT), os.environ.get("PYTHONPATH")])),
            PREP_SUPPORT_INCLUDE_DIR=str(ROOT / "include"),
            PREP_SUPPORT_CACHE_DIR=str(self.home / "cache"),
            AIRFLOW_CONN_SUPPORT_DB=json.dumps({
                "conn_type": "postgres", **self._postgres_fields(), "schema": self.support_db,
            }),
            # shift_handover reads waiting approvals and failed runs from this topology's own api-server.
            AIRFLOW_CONN_AIRFLOW_API=json.dumps({"conn_type": "http", "host": self.api_url,
                                                 "login": ADMIN["username"], "password": ADMIN["password"]}),
        )
        assert self.sandbox is not None
        env.update(self.sandbox.connection_env())
        if self.directory is not None:
            env.update(self.directory.connection_env())
        env.update(self.extra_env)
        return env

    def _postgres_fields(self) -> dict[str, Any]:
        parts = urllib.parse.urlsplit(self.postgres.admin_url)
        fields: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
                                  "login": urllib.parse.unquote(parts.username or "postgres")}
        if parts.password:
            fields["password"] = urllib.parse.unquote(parts.password)
        return fields

    def _run_async(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """A one-off step (migrations, checks) in its own session, logging to ``{log_dir}/{name}.log``."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_die_with_launcher)
        self._steps.append(process)
        return process

    def _wait_process(self, name: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
        try:
            code = process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        if code != 0:
            tail = "\n".join((self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-30:])
            hint = ""
            if name == "celery-preflight":
                from importlib.metadata import version

                hint = (f" - the CeleryExecutor does not import with celery {version('celery')} and "
                        f"apache-airflow-providers-celery {version('apache-airflow-providers-celery')}")
            raise TopologyError(f"{name} failed (exit {code}){hint}; its output:\n{tail}")

    # -- roles (issue 7 item 2)

    def create_roles(self, demo_users: bool = False) -> None:
        """Create or update our FAB roles (scripts/create_roles.py); with ``demo_users``, one user per role."""
        argv = [str(BIN / "python"), str(ROOT / "scripts" / "create_roles.py")]
        self._wait_process("create-roles", self._run_async("create-roles", argv + ["--demo-users"] * demo_users))

    # -- components

    def worker_node(self, name: str) -> str:
        """The Celery node name of a worker (``--celery-hostname``), also its task instances' hostname."""
        return f"{name}@{socket.gethostname()}"

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        airflow = str(BIN / "airflow")
        if name in self.workers:
            env = dict(self.env, PREP_WORKER_HOSTNAME=self.worker_node(name),
                       AIRFLOW__CORE__HOSTNAME_CALLABLE=f"scripts.distributed.{worker_hostname.__name__}")
            # --skip-serve-logs: the log folder is shared (as remote logging would be), and two log
            # servers on one machine would fight over [logging] worker_log_server_port.
            return [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h",
                    "--concurrency", str(self.worker_concurrency), "--skip-serve-logs"], env
        if name == "triggerer":
            return [airflow, "triggerer"], self.env
        if name in SERVICES:
            return [airflow, name], self.env
        raise KeyError(f"unknown component {name!r}; known: {', '.join((*SERVICES, *self.workers))}")

    def start_component(self, name: str) -> Component:
        argv, env = self._command(name)
        component = Component(name, argv, env, self.log_dir)
        component.start()
        self.components[name] = component
        return component

    def stop_component(self, name: str) -> None:
        """Stop one component gracefully (SIGTERM to its process tree; SIGKILL after 20 s)."""
        stop_components([self.components.pop(name)])

    def kill_component(self, name: str) -> list[int]:
        """SIGKILL a component's whole process tree, as if its machine died; return the pids killed.

        The tree includes the task runners, which put themselves in process groups of their own.
        """
        component = self.components.pop(name)
        tree = component.signal(signal.SIGKILL)
        if component.process is not None:
            component.process.wait()
        return sorted(tree)

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)

    # -- health

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health``: metadata database, scheduler, triggerer and dag-processor."""
        with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=10) as answer:
            return json.loads(answer.read())

    def scheduler_healthy(self) -> bool:
        """The scheduler's own health server (compose's healthcheck) and its heartbeat as the API reports it."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.scheduler_health_port}/health", timeout=5):
                pass
            return self.health().get("scheduler", {}).get("status") == "healthy"
        except (OSError, ValueError):
            return False

    def wait_until(self, what: str, check: Callable[[], Any], timeout_s: float = START_TIMEOUT_S,
                   interval_s: float = 0.5) -> Any:
        """Poll ``check`` until it returns something truthy; fail early when a component died."""
        deadline = time.monotonic() + timeout_s
        while True:
            for component in self.components.values():
                if not component.alive():
                    raise TopologyError(f"{component.name} exited ({component.process.returncode}) while waiting "
                                        f"for {what}; {component.log_path}:\n{component.log_tail()}")
            try:
                result = check()
            except (OSError, ValueError):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise TopologyError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(interval_s)

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the API answers, every job heartbeats and every worker answers a Celery ping."""
        began = time.monotonic()

        def component_healthy(key: str) -> Callable[[], bool]:
            return lambda: self.health().get(key, {}).get("status") == "healthy"

        self.wait_until("the api-server and the metadata database", component_healthy("metadatabase"), timeout_s)
        self.log(f"api-server healthy at {self.api_url} ({time.monotonic() - began:.0f} s)")
        if "scheduler" in self.components:
            self.wait_until("the scheduler's heartbeat", self.scheduler_healthy, timeout_s)
        for name, key in (("dag-processor", "dag_processor"), ("triggerer", "triggerer")):
            if name in self.components:
                self.wait_until(f"the {name}'s heartbeat", component_healthy(key), timeout_s)
        self.log(f"scheduler, dag-processor and triggerer heartbeating ({time.monotonic() - began:.0f} s)")
        workers = [name for name in self.workers if name in self.components]
        for name in workers:
            node = self.worker_node(name)
            self.wait_until(f"{node} ready", lambda c=self.components[name], n=node:
                            f"{n} ready." in c.log_path.read_text(errors="replace"), timeout_s)
        if workers:
            self.wait_until("the workers to answer a Celery ping", lambda: self.ping_workers(workers), timeout_s,
                            interval_s=2)
            self.log(f"workers {', '.join(map(self.worker_node, workers))} answer pings "
                     f"({time.monotonic() - began:.0f} s)")

    def ping_workers(self, names: Iterable[str]) -> bool:
        """``celery inspect ping`` (compose's worker healthcheck) for the given workers."""
        nodes = [self.worker_node(name) for name in names]
        answer = subprocess.run([str(BIN / "celery"), "--app", CELERY_APP, "inspect", "ping", "--timeout", "5",
                                 "-d", ",".join(nodes)], env=self.env, cwd=ROOT, capture_output=True, text=True,
                                timeout=90)
        return answer.returncode == 0 and all(f"{node}: OK" in answer.stdout for node in nodes)

    def wait_for_dag_files(self, timeout_s: float = START_TIMEOUT_S) -> list[str]:
        """Wait until every file in dags/ was parsed (into DAGs or an import error); return the DAG ids."""
        files = {str(path) for path in (ROOT / "dags").glob("*.py") if not path.name.startswith("_")}

        def parsed() -> list[str] | None:
            dags = self.api("GET", "/api/v2/dags?limit=1000")["dags"]
            errors = self.api("GET", "/api/v2/importErrors?limit=1000")["import_errors"]
            seen = {dag["fileloc"] for dag in dags} | {error["filename"] for error in errors}
            return sorted(dag["dag_id"] for dag in dags) if files <= seen else None

        dag_ids = self.wait_until("every file in dags/ to be parsed", parsed, timeout_s, interval_s=2)
        self.log(f"DAGs: {', '.join(dag_ids)}")
        return dag_ids

    # -- REST API

    def token(self, username: str = ADMIN["username"], password: str = ADMIN["password"]) -> str:
        """A JWT for the REST API from the FAB auth manager (``POST /auth/token``, JSON credentials)."""
        answer = self._http("POST", "/auth/token", {"username": username, "password": password}, token=None)
        return answer["access_token"]

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        """Call the REST API as the admin; JSON in and out. HTTP errors raise with the answer's body."""
        if self._token is None:
            self._token = self.token()
        return self._http(method, path, payload, token=self._token)

    def _http(self, method: str, path: str, payload: Any, token: str | None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise TopologyError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        return json.loads(body) if body else None


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PREP_API_PORT", "8080")),
                        help="the api-server's port (default 8080, or PREP_API_PORT; 0 = a free one)")
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("PREP_SANDBOX_PORT", "0")),
                        help="the sandbox's HTTP port (default: a free one, or PREP_SANDBOX_PORT)")
    parser.add_argument("--quick-failover", action="store_true",
                        help="fail and retry the tasks of a dead worker after 20 s instead of 5 minutes")
    parser.add_argument("--keep-files", action="store_true", help="keep AIRFLOW_HOME and the logs afterwards")
    args = parser.parse_args(argv)
    # Ctrl-C stops everything, even where a shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    topology = DistributedAirflow(api_port=args.port, sandbox_port=args.sandbox_port, keep_files=args.keep_files,
                                  settings=QUICK_FAILOVER if args.quick_failover else None)
    try:
        topology.start()
    except KeyboardInterrupt:
        print("\nStopped before it was up.", flush=True)
        return 130
    except TopologyError as error:
        print(f"\nCould not start the topology: {error}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"\nAirflow UI and REST API: http://localhost:{topology.api_port}  "
              f"login: {ADMIN['username']} / {ADMIN['password']}\n"
              f"Sandbox: {topology.sandbox.base_url}   Logs: {topology.log_dir}\n"
              "DAGs start paused; unpause them in the UI. Press Ctrl-C to stop everything.\n", flush=True)
        while True:
            for component in topology.components.values():
                if not component.alive():
                    print(f"{component.name} exited ({component.process.returncode}); "
                          f"{component.log_path}:\n{component.log_tail()}", file=sys.stderr, flush=True)
                    return 1
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nStopping every component, the sandbox and the databases ...", flush=True)
        return 0
    finally:
        topology.stop()


if __name__ == "__main__":
    sys.exit(main())

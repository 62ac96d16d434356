"""`make run`: the whole quick start on this machine, stopped with Ctrl-C.

Prepares AIRFLOW_HOME=.airflow in the checkout (SQLite, LocalExecutor, our DAG and
plugin folders, examples off), migrates Airflow's and the support database, starts
the sandbox, writes the Connections that point at it, and runs `airflow standalone`.
A second run reuses all of it. Ctrl-C stops everything this script started.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow")).resolve()
BIN = Path(sys.executable).parent
API_PORT = int(os.environ.get("PREP_API_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("PREP_SANDBOX_PORT", "8900"))
SANDBOX_TCP_PORT = int(os.environ.get("PREP_SANDBOX_TCP_PORT", "8901"))
SANDBOX_SMTP_PORT = int(os.environ.get("PREP_SANDBOX_SMTP_PORT", "8902"))
# Who logs in (SimpleAuthManager user:role): the admin, and the people the seeded policy and the UAT
# plan assign approvals to, so a review or a sign-off can be answered by its assignee.
USERS = {"admin": "admin", "alice": "user", "bob": "user", "carol": "user", "dave": "user", "analyst": "user"}
LDAP_PORT = int(os.environ.get("PREP_LDAP_PORT", "8903"))

AIRFLOW_CFG = f"""\
# Written by `make run` for the quick start; delete it to get a fresh one.
[core]
dags_folder = {ROOT / "dags"}
plugins_folder = {ROOT / "plugins"}
executor = LocalExecutor
load_examples = False
dags_are_paused_at_creation = False
simple_auth_manager_users = {{users}}
fernet_key = {{fernet_key}}

[database]
sql_alchemy_conn = sqlite:///{HOME / "airflow.db"}

[api]
port = {API_PORT}
base_url = http://localhost:{API_PORT}
secret_key = {{api_secret}}

[api_auth]
# Shared by every component standalone starts: tasks' tokens are signed and checked with it.
jwt_secret = {{jwt_secret}}

[logging]
base_log_folder = {HOME / "logs"}
"""


def environment() -> dict[str, str]:
    env = dict(os.environ, AIRFLOW_HOME=str(HOME), PREP_SUPPORT_CACHE_DIR=str(HOME / "cache"))
    # data_quality catches up from this date: the week the sandbox's estate has data for.
    env.setdefault("PREP_DQ_START_DATE", dq_start_date())
    # access_review catches up from the start of this quarter: one campaign to review, not one per quarter.
    env.setdefault("PREP_ACCESS_REVIEW_START_DATE", quarter_start().isoformat())
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "plugins"), str(ROOT), env.get("PYTHONPATH")]))
    return env


def quarter_start() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)


def dq_start_date() -> str:
    """Seven days before the first `make run` (kept in .airflow so later runs catch up from the same day)."""
    marker = HOME / "dq_start_date"
    if not marker.exists():
        HOME.mkdir(exist_ok=True)
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
        marker.write_text(start.isoformat())
    return marker.read_text().strip()


def airflow(*args: str) -> None:
    subprocess.run([str(BIN / "airflow"), *args], env=environment(), check=True, stdout=subprocess.DEVNULL)


def connections(sandbox, directory=None) -> dict[str, dict]:
    """The Connections of a quick-start deployment: our support database, the sandbox (and its HR export), slapd."""
    found = {
        "support_db": {"conn_type": "sqlite", "host": str(HOME / "support.db")},
        **{key[len("AIRFLOW_CONN_"):].lower(): json.loads(value) for key, value in sandbox.connection_env().items()},
    }
    if directory is not None:
        found["ldap_default"] = directory.connection()
    return found


def directory_process():
    """slapd (the Active Directory stand-in, seeded afresh) when installed, else nothing."""
    from contextlib import nullcontext

    from sandbox.ldap_server import SlapdProcess, slapd_available

    if not slapd_available():
        print("slapd is not installed (apt-get install slapd): no directory for access reviews", flush=True)
        return nullcontext(None)
    return SlapdProcess(HOME / "slapd", port=LDAP_PORT)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    # Ctrl-C and SIGTERM both stop everything, even where a shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    from sandbox.server import SandboxProcess

    HOME.mkdir(exist_ok=True)
    config = HOME / "airflow.cfg"
    if not config.exists():
        config.write_text(AIRFLOW_CFG.format(
            users=",".join(f"{user}:{role}" for user, role in USERS.items()),
            jwt_secret=secrets.token_urlsafe(32), api_secret=secrets.token_urlsafe(32),
            fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        ))
    print(f"AIRFLOW_HOME={HOME}: migrating the metadata database ...", flush=True)
    airflow("db", "migrate")

    with SandboxProcess(HOME / "sandbox", port=SANDBOX_PORT, tcp_port=SANDBOX_TCP_PORT,
                        smtp_port=SANDBOX_SMTP_PORT) as sandbox, directory_process() as directory:
        print(f"Sandbox (stand-ins for the external systems) at {sandbox.base_url}", flush=True)
        if directory is not None:
            print(f"Directory (OpenLDAP slapd with AD attributes) at {directory.url}", flush=True)
        conn_file = HOME / "connections.json"
        conn_file.write_text(json.dumps(connections(sandbox, directory), indent=2))
        airflow("connections", "import", "--overwrite", str(conn_file))
        # Resolved "how-to" tickets, so support_docs has a knowledge base to publish.
        urllib.request.urlopen(urllib.request.Request(f"{sandbox.base_url}/jira/_sandbox/seed/how-to", method="POST"),
                               timeout=10).close()
        subprocess.run([str(BIN / "python"), "-m", "prep_support.migrate", "--url", f"sqlite:///{HOME / 'support.db'}"],
                       env=environment(), check=True)

        standalone = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=environment(),
                                      stdout=open(HOME / "standalone.log", "ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            airflow_api_connection(print_login())
            print("Logs: .airflow/standalone.log. Press Ctrl-C to stop everything.", flush=True)
            return standalone.wait()
        except KeyboardInterrupt:
            print("\nStopping Airflow and the sandbox ...", flush=True)
            return 0
        finally:
            stop(standalone)


def print_login(timeout_s: float = 180) -> dict[str, str]:
    passwords = HOME / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not passwords.exists():
        time.sleep(1)
    login = json.loads(passwords.read_text()) if passwords.exists() else {}
    password = login.get("admin", "(see .airflow/simple_auth_manager_passwords.json.generated)")
    print(f"\nAirflow UI: http://localhost:{API_PORT}  login: admin  password: {password}", flush=True)
    others = ", ".join(f"{user} / {secret}" for user, secret in login.items() if user != "admin")
    if others:
        print(f"Approvers and reviewers (user / password): {others}\n", flush=True)
    return login


def airflow_api_connection(login: dict[str, str]) -> None:
    """``airflow_api`` (shift_handover reads waiting approvals and failed runs) as the admin, once it has a password."""
    if "admin" not in login:
        return
    conn_file = HOME / "airflow_api_connection.json"
    conn_file.write_text(json.dumps({"airflow_api": {"conn_type": "http", "host": f"http://localhost:{API_PORT}",
                                                     "login": "admin", "password": login["admin"]}}))
    airflow("connections", "import", "--overwrite", str(conn_file))


def stop(process: subprocess.Popen) -> None:
    """Stop standalone and every process it started (its own session)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


if __name__ == "__main__":
    sys.exit(main())

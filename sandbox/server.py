"""Run the sandbox in a child process, for tests, demos and the quick start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from sandbox import confluence, exchanges, graph, statuspage
from sandbox.child import stop_child
from sandbox.jira import SANDBOX_PASSWORD as JIRA_PASSWORD
from sandbox.jira import SANDBOX_USER as JIRA_USER
from sandbox.nagios import PASSWORD as NAGIOS_PASSWORD
from sandbox.nagios import USERNAME as NAGIOS_USER
from sandbox.newrelic import ACCOUNT_ID as NEWRELIC_ACCOUNT_ID
from sandbox.newrelic import API_KEY as NEWRELIC_API_KEY
from sandbox.okta import SANDBOX_TOKEN as OKTA_TOKEN
from sandbox.servicenow import SANDBOX_PASSWORD as SERVICENOW_PASSWORD
from sandbox.servicenow import SANDBOX_USER as SERVICENOW_USER
from sandbox.slack import SANDBOX_TOKEN as SLACK_TOKEN
from sandbox.splunk import TOKEN as SPLUNK_TOKEN

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
READY_FILENAME = "sandbox.ready.json"
LOG_FILENAME = "sandbox.log"


class SandboxError(RuntimeError):
    """The sandbox process could not be started."""


class SandboxProcess:
    """``python -m sandbox`` as a context manager.

    >>> with SandboxProcess(tmp_path) as sandbox:
    ...     requests.get(f"{sandbox.base_url}/estate/apps")

    The child's stdout and stderr go to ``{state_dir}/sandbox.log``; if it dies before it is
    ready, :class:`SandboxError` carries that output.
    """

    def __init__(self, state_dir: Path, port: int = 0, tcp_port: int = 0, smtp_port: int = 0) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.tcp_port = tcp_port
        self.smtp_port = smtp_port
        self.ready_file = self.state_dir / READY_FILENAME
        self.log_file = self.state_dir / LOG_FILENAME
        self.base_url = ""
        self.http_port = 0
        self.estate_db = self.state_dir / "estate.db"
        self.exchanges_file = self.state_dir / exchanges.FILENAME  # every call the stand-ins answered
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has exited, else None."""
        return None if self._process is None else self._process.poll()

    def start(self) -> SandboxProcess:
        """Start the child and wait until both ports listen."""
        if self.returncode is None and self._process is not None:
            raise SandboxError("sandbox already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        command = [
            sys.executable, "-m", "sandbox",
            "--host", HOST,
            "--port", str(self.port),
            "--tcp-port", str(self.tcp_port),
            "--smtp-port", str(self.smtp_port),
            "--state-dir", str(self.state_dir),
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        self._log = self.log_file.open("wb")
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        stop_child(self._process, STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables pointing the estate connections at this sandbox."""
        return {
            "AIRFLOW_CONN_ESTATE_HTTP": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http"}
            ),
            "AIRFLOW_CONN_ESTATE_TCP": json.dumps({"conn_type": "generic", "host": HOST, "port": self.tcp_port}),
            "AIRFLOW_CONN_ESTATE_DB": json.dumps({"conn_type": "sqlite", "host": str(self.estate_db)}),
            "AIRFLOW_CONN_SERVICENOW_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "login": SERVICENOW_USER, "password": SERVICENOW_PASSWORD, "extra": {"base_path": "/servicenow"}}
            ),
            # The whole webhook URL is the secret, so it lives in the (masked) password field.
            "AIRFLOW_CONN_TEAMS_DEFAULT": json.dumps(
                {"conn_type": "http", "password": f"{self.base_url}/teams/webhook/prep-support-alerts"}
            ),
            # For the SMTP provider's SmtpHook: plain SMTP, no SSL, no STARTTLS, no login.
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {"conn_type": "smtp", "host": HOST, "port": self.smtp_port,
                 "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "prep-support@example.com",
                           "timeout": 10, "retry_limit": 2}}
            ),
            # SlackHook: the bot token is the password; base_url points slack_sdk's WebClient here.
            "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
                {"conn_type": "slack", "password": SLACK_TOKEN,
                 "extra": {"base_url": f"{self.base_url}/slack/api/", "timeout": 10}}
            ),
            # JiraHook: host is the site's base URL (atlassian-python-api appends rest/api/2/...).
            "AIRFLOW_CONN_JIRA_DEFAULT": json.dumps(
                {"conn_type": "jira", "host": f"{self.base_url}/jira", "login": JIRA_USER, "password": JIRA_PASSWORD,
                 "extra": {"verify": False}}
            ),
            # Monitoring sources: the sandbox serves each under its own path, given as extra "base_path".
            "AIRFLOW_CONN_PROMETHEUS_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "extra": {"base_path": "/prometheus"}}
            ),
            "AIRFLOW_CONN_NAGIOS_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "login": NAGIOS_USER, "password": NAGIOS_PASSWORD, "extra": {"base_path": "/nagios"}}
            ),
            "AIRFLOW_CONN_NEWRELIC_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "password": NEWRELIC_API_KEY,
                 "extra": {"base_path": "/newrelic", "account_id": NEWRELIC_ACCOUNT_ID}}
            ),
            "AIRFLOW_CONN_SPLUNK_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "password": SPLUNK_TOKEN, "extra": {"base_path": "/splunk"}}
            ),
            # The seeded HR export (sandbox/directory_seed.py) that hooks.hr_roster.HrRoster reads.
            "AIRFLOW_CONN_HR_ROSTER": json.dumps(
                {"conn_type": "fs", "extra": {"path": str(REPO_ROOT / "include" / "data" / "hr_roster.csv")}}
            ),
            # OktaHook: host = the org URL, password = the API token (sent as "SSWS <token>").
            "AIRFLOW_CONN_OKTA_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "password": OKTA_TOKEN, "extra": {"base_path": "/okta", "timeout": 10}}
            ),
            # Publishing: Confluence (host = the site, as for Jira), Statuspage and SharePoint (Microsoft Graph).
            "AIRFLOW_CONN_CONFLUENCE_DEFAULT": json.dumps(
                {"conn_type": "http", "host": f"{self.base_url}/confluence", "login": confluence.SANDBOX_USER,
                 "password": confluence.SANDBOX_TOKEN, "extra": {"space": "SUP", "timeout": 10}}
            ),
            "AIRFLOW_CONN_STATUSPAGE_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "password": statuspage.API_KEY,
                 "extra": {"page_id": statuspage.PAGE_ID, "base_path": "/statuspage", "timeout": 10}}
            ),
            "AIRFLOW_CONN_SHAREPOINT_DEFAULT": json.dumps(
                {"conn_type": "http", "host": HOST, "port": self.http_port, "schema": "http",
                 "login": graph.CLIENT_ID, "password": graph.CLIENT_SECRET,
                 "extra": {"tenant_id": graph.TENANT_ID, "site": f"{graph.HOSTNAME}:{graph.SITE_PATH}",
                           "base_path": "/graph", "timeout": 10,
                           "token_url": f"{self.base_url}/graph/login/{graph.TENANT_ID}/oauth2/v2.0/token"}}
            ),
        }

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready_file.exists():
            if self._process.poll() is not None:
                raise SandboxError(
                    f"sandbox exited with status {self._process.returncode} before it was ready; "
                    f"its output:\n{self._output()}"
                )
            if time.monotonic() > deadline:
                raise SandboxError(f"sandbox not ready after {START_TIMEOUT_S:.0f} s; its output:\n{self._output()}")
            time.sleep(0.05)
        info = json.loads(self.ready_file.read_text())
        self.http_port = info["http_port"]
        self.tcp_port = info["tcp_port"]
        self.smtp_port = info["smtp_port"]
        self.base_url = info["base_url"]
        self.estate_db = Path(info["estate_db"])

    def _output(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_file.read_text(errors="replace").strip() or "(no output)"

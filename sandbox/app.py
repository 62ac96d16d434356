"""The sandbox web app: one FastAPI app with a router per stand-in system."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from sandbox import (
    confluence,
    estate,
    exchanges,
    faults,
    graph,
    jira,
    nagios,
    newrelic,
    okta,
    prometheus,
    servicenow,
    slack,
    smtp,
    splunk,
    statuspage,
    teams,
    telemetry,
)

# Each stand-in system: its router, and the path prefix fault injection applies to.
SYSTEMS = (
    ("estate", estate.router, estate.PREFIX),
    ("servicenow", servicenow.router, servicenow.PREFIX),
    ("teams", teams.router, teams.PREFIX),
    ("slack", slack.router, slack.API_PREFIX),
    ("jira", jira.router, jira.API_PREFIX),
    ("prometheus", prometheus.router, prometheus.PREFIX),
    ("nagios", nagios.router, nagios.PREFIX),
    ("newrelic", newrelic.router, newrelic.PREFIX),
    ("splunk", splunk.router, splunk.PREFIX),
    ("telemetry", telemetry.router, telemetry.PREFIX),
    ("okta", okta.router, okta.API_PREFIX),
    ("confluence", confluence.router, confluence.FAULT_PREFIX),
    ("statuspage", statuspage.router, statuspage.FAULT_PREFIX),
    ("graph", graph.router, graph.FAULT_PREFIX),
)
# Systems whose injected faults answer in that system's own error shape.
ERROR_BODIES = {"servicenow": servicenow.error_body, "teams": teams.error_body, "slack": slack.error_body,
                "jira": jira.error_body, "prometheus": prometheus.error_body, "nagios": nagios.error_body,
                "newrelic": newrelic.error_body, "splunk": splunk.error_body,
                "okta": okta.error_body}
ERROR_BODIES |= {"confluence": confluence.error_body, "statuspage": statuspage.error_body, "graph": graph.error_body}


def create_app(state_dir: Path, tcp_host: str = "127.0.0.1", tcp_port: int = 0) -> FastAPI:
    """Build the sandbox app keeping its files under ``state_dir``.

    ``tcp_host``/``tcp_port`` are where the estate's TCP listener binds (0 = a free port);
    it starts and stops with the app's lifespan.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    estate_state = estate.Estate(state_dir, tcp_host=tcp_host, tcp_port=tcp_port)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(estate_state.running())
            yield

    app = FastAPI(title="Prep Support sandbox", lifespan=lifespan)
    app.state.state_dir = state_dir
    app.state.estate = estate_state
    app.state.faults = faults.Faults(exchanges.Recorder(state_dir))
    app.state.servicenow = servicenow.ServiceNow()
    app.state.teams = teams.Teams()
    app.state.smtp = smtp.Mailbox()
    app.state.slack = slack.SlackWorkspace()
    app.state.jira = jira.JiraSite()
    app.state.confluence = confluence.ConfluenceSite()
    app.state.statuspage = statuspage.StatusPage()
    app.state.graph = graph.SharePointSite()
    app.state.telemetry = telemetry.Telemetry()  # shared by prometheus, nagios, newrelic and splunk
    app.state.okta = okta.OktaOrg()
    for name, router, prefix in SYSTEMS:
        app.include_router(router)
        app.state.faults.register(name, prefix, ERROR_BODIES.get(name, faults.default_error_body))
    app.include_router(faults.router)
    app.include_router(smtp.router)
    app.add_middleware(lambda inner: app.state.faults.middleware(inner))

    @app.get("/", tags=["sandbox"])
    async def index() -> dict[str, Any]:
        """What this sandbox stands in for."""
        return {"name": "Prep Support sandbox", "systems": [name for name, _router, _prefix in SYSTEMS]}

    return app

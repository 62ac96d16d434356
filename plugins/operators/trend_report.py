"""Build every service's weekly trend report, keep it, and post it with its chart to the team channel."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from operators.support_state import SupportStateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from sqlalchemy import Engine

    from hooks.channels import SlackSender
    from prep_support.reports import ServiceReport
    from prep_support.routing import ResolvedRoute


class ReportsNotPosted(RuntimeError):
    """Some reports were kept but not posted; the retry posts them (and only them)."""


class TrendReportOperator(SupportStateOperator):
    """Report the calendar week before the run's data interval ends (see ``prep_support.reports.report_week``).

    Per service: availability, latency and a chart from the hourly rollups, stored in ``trend_reports``
    (a re-run replaces the week's row) and posted once to the service's Slack channel, keyed
    ``report:<service>:<week start>:slack`` in the notification ledger.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from hooks.channels import SlackSender
        from prep_support.charts import render_chart
        from prep_support.how_to_store import deflection
        from prep_support.reports import report_week, store_report, weekly_reports
        from prep_support.results import sync_catalog

        catalog, routing = self.load_config()
        engine = self.support_engine()
        sync_catalog(engine, catalog)  # the reports reference the services
        week_start, week_end = report_week(context["data_interval_end"])
        week_deflection = deflection(engine, week_start, week_end)  # how-to requests: one line in every report
        now = datetime.now(UTC)
        services = {service.id: service for service in catalog.services}
        slack = SlackSender()
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        for report in weekly_reports(engine, catalog, week_start, week_end):
            chart = render_chart(report.series(), title=chart_title(report))
            store_report(engine, report, chart, now)
            self.log.info("%s: availability %s over %d results", report.service_id,
                          report.availability, report.results)
            try:
                outcomes[self.post(engine, slack, report, chart, routing.route(services[report.service_id]), now,
                                    week_deflection)] += 1
            except Exception as error:  # noqa: BLE001 - the other services still get theirs; raised below
                failures.append(f"{report.service_id}: {type(error).__name__}: {error}")
        if failures:
            raise ReportsNotPosted(f"{len(failures)} report(s) kept but not posted (the retry posts them): "
                                   + "; ".join(failures[:5]))
        return {"week_start": week_start.isoformat(), "week_end": week_end.isoformat(), "services": len(services),
                **dict(outcomes)}

    def post(self, engine: Engine, slack: SlackSender, report: ServiceReport, chart: bytes, route: ResolvedRoute,
             now: datetime, week_deflection: Any = None) -> str:
        """Post a report once: 'posted', 'already_posted', or 'not_routed' (no Slack channel for the service)."""
        from prep_support import outbox
        from prep_support.reports import report_key, summary_text

        if not route.slack_channel or route.channels.slack is None:
            return "not_routed"
        key = report_key(report.service_id, report.week_start)
        text = summary_text(report, week_deflection)
        conn_id = route.channels.slack.conn_id
        posted = outbox.send_once(
            engine, key=key, event="report", channel="slack", conn_id=conn_id, target=route.slack_channel,
            subject=chart_title(report), body=text, now=now,
            send=lambda: slack.share_file(conn_id, route.slack_channel, content=chart, comment=text,
                                          filename=f"{report.service_id}-trend-{report.week_start:%Y-%m-%d}.png",
                                          title=chart_title(report)))
        if not posted:
            self.log.info("%s: already posted (%s)", report.service_id, key)
            return "already_posted"
        self.log.info("%s: posted to %s", report.service_id, route.slack_channel)
        return "posted"


def chart_title(report: ServiceReport) -> str:
    return f"{report.service_name}: week of {report.week_start:%Y-%m-%d}, availability {report.availability}"

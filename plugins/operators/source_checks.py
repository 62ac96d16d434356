"""Reading a monitoring-source check (Prometheus, Nagios, New Relic, Splunk) for a data interval."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prep_support.catalog import NagiosCheck, NewRelicCheck, PrometheusCheck, SplunkCheck
from prep_support.probes import NOT_EVALUABLE, ProbeResult, judge_nagios, judge_value

SourceCheck = PrometheusCheck | NagiosCheck | NewRelicCheck | SplunkCheck


class SourceHooks:
    """One hook per Connection for the length of a task."""

    def __init__(self) -> None:
        self._hooks: dict[tuple[str, str], Any] = {}

    def __call__(self, check: SourceCheck) -> Any:
        key = (check.kind, check.conn_id)
        if key not in self._hooks:
            if isinstance(check, PrometheusCheck):
                from hooks.prometheus import PrometheusHook as hook_class
                argument = "prometheus_conn_id"
            elif isinstance(check, NagiosCheck):
                from hooks.nagios import NagiosHook as hook_class
                argument = "nagios_conn_id"
            elif isinstance(check, NewRelicCheck):
                from hooks.newrelic import NewRelicHook as hook_class
                argument = "newrelic_conn_id"
            else:
                from hooks.splunk import SplunkHook as hook_class
                argument = "splunk_conn_id"
            self._hooks[key] = hook_class(**{argument: check.conn_id})
        return self._hooks[key]


def read_source(hooks: SourceHooks, key: str, check: SourceCheck, start: datetime, end: datetime) -> ProbeResult:
    """The check's result for [start, end) as the monitoring system saw it (blocking: run it in a thread).

    A monitoring system that cannot answer says nothing about the application: the result is
    *not evaluable* (with the reason), which the health state machine neither counts nor resets.
    """
    hook = hooks(check)
    started = time.perf_counter()
    try:
        if isinstance(check, PrometheusCheck):
            status, detail = judge_value(check, hook.scalar(check.query, end))
        elif isinstance(check, NagiosCheck):
            status, detail = judge_nagios(hook.worst_state(check.host, check.service, start, end))
        elif isinstance(check, NewRelicCheck):
            status, detail = judge_value(check, hook.nrql_value(f"{check.nrql} {hook.interval_clause(start, end)}"))
        else:
            status, detail = judge_value(check, hook.count(check.search, start, end))
    except Exception as error:  # noqa: BLE001 - recorded as the reason the check could not be evaluated
        return ProbeResult(key, NOT_EVALUABLE, None, f"{check.kind} unavailable: {type(error).__name__}: {error}"[:500])
    return ProbeResult(key, status, round((time.perf_counter() - started) * 1000, 2), detail)

"""The health sweep's tasks run in-process, in order: for tests, benchmarks and a sweep from a shell.

probe (ProbeChecksOperator.probe) -> record -> evaluate_sweep -> reconcile_now -> send_pending:
the same code the DAG's tasks run, with Airflow's scheduling left out, so many consecutive
sweeps take seconds instead of twenty-five minutes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hooks.channels import senders
from hooks.trackers import Trackers
from operators.probe_checks import ProbeChecksOperator
from prep_support.catalog import load_catalog
from prep_support.monitoring import evaluate_sweep
from prep_support.outbox import send_pending
from prep_support.reconcile import reconcile_now
from prep_support.results import record_results, sync_catalog
from prep_support.routing import load_routing


class Cycle:
    def __init__(self, engine: Engine, catalog_path: Path, routing_path: Path, start: datetime | None = None) -> None:
        self.engine = engine
        self.catalog_path = catalog_path
        self.routing_path = routing_path
        self.catalog = load_catalog(catalog_path)
        self.routing = load_routing(self.catalog, routing_path)
        self.start = start or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
        self.number = 0
        sync_catalog(engine, self.catalog)

    def sweep(self, act: bool = True) -> dict[str, Any]:
        """One sweep at the next five-minute interval; ``act=False`` stops after evaluating health."""
        start = self.start + timedelta(minutes=5 * self.number)
        end = start + timedelta(minutes=5)
        run_id = f"scheduled__{end.isoformat()}"
        self.number += 1
        keys = sorted(self.catalog.checks_by_key)
        operator = ProbeChecksOperator(task_id="probe_checks", check_keys=keys, catalog_path=str(self.catalog_path))
        started = time.perf_counter()
        results = asyncio.run(operator.probe(self.catalog, keys, True, start, end))
        probe_s = time.perf_counter() - started
        record_results(self.engine, results, run_id, start, end)
        evaluation = evaluate_sweep(self.engine, self.catalog, self.routing.thresholds, run_id, start, end, end,
                                    live=True)
        if not act:
            return {"evaluation": evaluation, "at": end, "probe_s": probe_s}
        done = reconcile_now(self.engine, self.catalog, self.routing, Trackers(), run_id, end)
        sent = send_pending(self.engine, senders(), end)
        return {"evaluation": evaluation, "incidents": done, "sent": sent, "at": end, "probe_s": probe_s}


"""Benchmark the health sweep: probing against its floor, and parsing against a one-task DAG.

1. The sandbox serves N endpoints that each answer after 50 ms. One sweep's probing (the
   operator's own code path, aiohttp) is timed against the floor N x 50 ms / concurrency,
   measured in this run. httpx.AsyncClient does the same probes for comparison, which is why
   the probes use aiohttp. Target: ratio <= 1.5 at concurrency 100.
2. The full cycle (probe, record, evaluate health and trends, reconcile incidents with Jira,
   send Slack messages) with 50 of the N endpoints failing, against probing alone, in the same
   run. Target: the acting part adds at most 25% in steady state (incidents open, nothing new).
   The sweep that opens the 50 incidents (50 Jira tickets, 50 Slack messages) is shown apart.
3. DagBag parse time of dags/health_sweep.py with an N-check catalog, against a one-task DAG
   file parsed in the same process. Target: <= 20x the one-task DAG (warm: the validated catalog
   comes from the cache keyed on the file's hash; cold: the first parse after the file changed).

Run with `make bench` (or `python bench/health_sweep.py --checks 1000 --concurrency 100`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.mkdtemp(prefix="prep-bench-"))
os.environ.update(
    AIRFLOW_HOME=str(WORK / "airflow"),
    PREP_SUPPORT_CACHE_DIR=str(WORK / "cache"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
)
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

LATENCY_MS = 50
FAILING = 50
ROUTING = """\
defaults:
  tracker: {system: jira}
  channels: {slack: {}}
"""
ONE_TASK_DAG = '''
from datetime import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2026, 1, 1))
def one_task():
    @task
    def hello():
        return 1
    hello()

one_task()
'''


def write_catalog(path: Path, checks: int) -> None:
    lines = ["services:"]
    per_service = 10
    for service in range(checks // per_service):
        lines += [f"  - id: bench-service-{service:03d}", f"    name: Bench service {service}",
                  "    owner: bench@example.com", "    team_channel: '#prep-support'", "    tracker_project: OPS",
                  "    criticality: medium", "    checks:"]
        for number in range(per_service):
            app = f"bench-{service * per_service + number:04d}"
            lines += [f"      - id: {app}", "        kind: http", "        conn_id: estate_http",
                      f"        url: /estate/apps/{app}/health", "        json_path_equals: {'$.status': ok}",
                      "        timeout_s: 5"]
    path.write_text("\n".join(lines) + "\n")


def post(url: str, payload: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def time_operator_probe(catalog_path: Path, concurrency: int) -> tuple[float, dict[str, int]]:
    from operators.probe_checks import ProbeChecksOperator
    from prep_support.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    keys = sorted(catalog.checks_by_key)
    operator = ProbeChecksOperator(task_id="probe_checks", check_keys=keys, concurrency=concurrency)
    now = datetime.now(UTC)
    started = time.perf_counter()
    results = asyncio.run(operator.probe(catalog, keys, True, now, now))
    elapsed = time.perf_counter() - started
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return elapsed, counts


def time_cycles(catalog_path: Path, base_url: str) -> tuple[list[float], list[float], dict]:
    """Sweeps through the DAG's own code: (probing seconds, whole-cycle seconds) per sweep."""
    from sqlalchemy import create_engine

    from operators.sweep_cycle import Cycle
    from prep_support.migrate import upgrade

    routing_path = WORK / "routing.yaml"
    engine = create_engine(f"sqlite:///{WORK / 'support.db'}")
    upgrade(engine)
    cycle = Cycle(engine, catalog_path, routing_path)
    for number in range(FAILING):
        put(f"{base_url}/estate/apps/bench-{number * 20:04d}", {"status_code": 503})
    probing, whole, last = [], [], {}
    for _ in range(6):
        started = time.perf_counter()
        last = cycle.sweep()
        whole.append(time.perf_counter() - started)
        probing.append(last["probe_s"])
    return probing, whole, last


def put(url: str, payload: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def time_httpx_probe(urls: list[str], concurrency: int) -> float:
    import httpx

    async def sweep() -> None:
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def one(url: str) -> None:
                async with gate:
                    (await client.get(url)).raise_for_status()
            await asyncio.gather(*(one(url) for url in urls))

    started = time.perf_counter()
    asyncio.run(sweep())
    return time.perf_counter() - started


def parse_seconds(path: Path) -> float:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    elapsed = time.perf_counter() - started
    if bag.import_errors or not bag.dags:
        raise SystemExit(f"{path} did not parse: {bag.import_errors}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from sandbox.server import SandboxProcess

    catalog_path = WORK / "services.yaml"
    write_catalog(catalog_path, args.checks)
    os.environ["PREP_SUPPORT_CATALOG"] = str(catalog_path)
    os.environ["PREP_SUPPORT_ROUTING"] = str(WORK / "routing.yaml")
    (WORK / "routing.yaml").write_text(ROUTING)
    floor = args.checks * LATENCY_MS / 1000 / args.concurrency

    with SandboxProcess(WORK / "sandbox") as sandbox:
        os.environ.update(sandbox.connection_env())
        post(f"{sandbox.base_url}/estate/apps/bulk", {"prefix": "bench", "count": args.checks,
                                                      "latency_ms": LATENCY_MS})
        urls = [f"{sandbox.base_url}/estate/apps/bench-{n:04d}/health" for n in range(args.checks)]
        time_operator_probe(catalog_path, args.concurrency)  # warm-up: imports, connection pool
        runs = [time_operator_probe(catalog_path, args.concurrency) for _ in range(args.repeat)]
        aiohttp_s = statistics.median(elapsed for elapsed, _ in runs)
        httpx_s = statistics.median(time_httpx_probe(urls, args.concurrency) for _ in range(args.repeat))
        cycle_probe, cycle_whole, cycle_last = time_cycles(catalog_path, sandbox.base_url)

    print(f"probing {args.checks} endpoints x {LATENCY_MS} ms at concurrency {args.concurrency}")
    print(f"  floor                      {floor:8.3f} s")
    print(f"  sweep (aiohttp, operator)  {aiohttp_s:8.3f} s   ratio {aiohttp_s / floor:5.2f}   "
          f"(target <= 1.5; results {runs[-1][1]})")
    print(f"  httpx.AsyncClient          {httpx_s:8.3f} s   ratio {httpx_s / floor:5.2f}   (for comparison)")

    print(f"full cycle, {FAILING} of {args.checks} failing (probe, record, health, incidents, Slack)")
    for number, (probe_s, whole_s) in enumerate(zip(cycle_probe, cycle_whole, strict=True), start=1):
        note = " (opens the incidents)" if number == 3 else ""
        print(f"  sweep {number}: probing {probe_s:6.3f} s, cycle {whole_s:6.3f} s, "
              f"ratio {whole_s / probe_s:5.2f}{note}")
    steady = [w / p for p, w in zip(cycle_probe[3:], cycle_whole[3:], strict=True)]
    print(f"  steady state (sweeps 4-6): cycle / probing = {statistics.median(steady):.2f}   (target <= 1.25); "
          f"incidents {cycle_last['incidents']['opened']} opened in the last sweep, "
          f"{cycle_last['evaluation'].summary()}")

    one_task = WORK / "dags" / "one_task.py"
    one_task.parent.mkdir()
    one_task.write_text(ONE_TASK_DAG)
    sweep_dag = ROOT / "dags" / "health_sweep.py"
    parse_seconds(one_task)  # warm-up: Airflow's own imports
    baseline = statistics.median(parse_seconds(one_task) for _ in range(5))
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    cold = parse_seconds(sweep_dag)  # cache empty: read and validate the catalog
    warm = statistics.median(parse_seconds(sweep_dag) for _ in range(5))
    print(f"parsing dags/health_sweep.py with a {args.checks}-check catalog")
    print(f"  one-task DAG               {baseline * 1000:8.1f} ms")
    print(f"  health_sweep, cache warm   {warm * 1000:8.1f} ms   ratio {warm / baseline:5.1f}   (target <= 20)")
    print(f"  health_sweep, cache cold   {cold * 1000:8.1f} ms   ratio {cold / baseline:5.1f}   "
          "(first parse after the catalog changed)")


if __name__ == "__main__":
    main()

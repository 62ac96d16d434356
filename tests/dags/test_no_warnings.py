"""Our DAGs load without a warning: one raised while they, or the plugins they import, load fails the test.

Airflow 3.3 warned on every parse that ``airflow.security.permissions`` is deprecated, because each DAG
carried ``access_control``; the DAG-level access is now synced by scripts/create_roles.py instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A fresh interpreter: in this one, other tests have imported our modules and their warnings were shown once.
LOAD = """
import json, sys, warnings
from airflow.dag_processing.dagbag import DagBag  # Airflow's own imports are not what this test is about

ours = tuple(sys.argv[1:])
for folder in sys.argv[1:-1]:  # each DAG folder; the last argument is the plugins folder
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=folder)
    print(json.dumps({"dags": sorted(bag.dags), "errors": {p: text[-1500:] for p, text in bag.import_errors.items()},
                      "warnings": {p: list(found) for p, found in bag.captured_warnings.items()},
                      "ours": [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in seen
                               if w.filename.startswith(ours)]}))
"""


def load(*dags_folders: Path) -> list[dict]:
    """What loading each folder in one fresh interpreter imported, failed on and warned about."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", LOAD, *map(str, dags_folders), str(ROOT / "plugins")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_the_dags_load_without_a_warning_and_the_check_can_fail(tmp_path: Path) -> None:
    # The check itself: a DAG still passing access_control, as ours did, is reported.
    (tmp_path / "old_style.py").write_text(
        "from airflow.sdk import dag\n"
        "@dag(schedule=None, access_control={'Support Viewer': {'DAGs': {'can_read'}}})\n"
        "def old_style():\n    pass\n"
        "old_style()\n")

    loaded, old_style = load(ROOT / "dags", tmp_path)

    assert loaded["errors"] == {}
    assert loaded["warnings"] == {}, "warnings raised while our DAG files were parsed (the DAG processor shows "
    "them as DAG warnings):\n" + "\n".join(w for found in loaded["warnings"].values() for w in found)
    assert loaded["ours"] == [], "warnings raised from our modules:\n" + "\n".join(loaded["ours"])
    dag_files = sorted(p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))
    assert loaded["dags"] == dag_files
    assert ["airflow.security.permissions module is deprecated" in w
            for w in old_style["warnings"][str(tmp_path / "old_style.py")]] == [True]

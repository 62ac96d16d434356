"""Where the project's files are, so DAGs, tasks and tests agree on them."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = Path(os.environ.get("PREP_SUPPORT_INCLUDE_DIR", PROJECT_ROOT / "include"))
CONFIG_DIR = INCLUDE_DIR / "config"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"


def catalog_path() -> Path:
    """The service catalog; ``PREP_SUPPORT_CATALOG`` points elsewhere (benchmarks, tests)."""
    return Path(os.environ.get("PREP_SUPPORT_CATALOG", CONFIG_DIR / "services.yaml"))


def routing_path() -> Path:
    """Where incidents and messages go; ``PREP_SUPPORT_ROUTING`` points elsewhere (benchmarks, tests)."""
    return Path(os.environ.get("PREP_SUPPORT_ROUTING", CONFIG_DIR / "routing.yaml"))


def connections_doc_path() -> Path:
    return CONFIG_DIR / "connections.yaml"


def cache_dir() -> Path:
    """A writable folder for derived files (validated catalogs), under AIRFLOW_HOME when set."""
    base = os.environ.get("PREP_SUPPORT_CACHE_DIR") or os.path.join(
        os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "cache", "prep_support"
    )
    return Path(base)

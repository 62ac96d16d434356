"""Fixtures for the data-quality tests: the sandbox's seeded estate database, and query files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.estate_db import ensure_estate_db

# The estate's timestamps are relative to when it is built: a fixed "now" makes every count exact.
ESTATE_NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def estate_engine(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    """A SQLite engine on a fresh copy of the sandbox's estate database, built as of ESTATE_NOW."""
    path = ensure_estate_db(tmp_path_factory.mktemp("estate"), ESTATE_NOW)
    return sa.create_engine(f"sqlite:///{path}")


@pytest.fixture
def sql_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An include/sql/quality/ of the test's own, for query files."""
    from prep_support import paths

    folder = tmp_path / "sql"
    (folder / "quality").mkdir(parents=True)
    monkeypatch.setattr(paths, "SQL_DIR", folder)
    return folder / "quality"

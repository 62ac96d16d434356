"""Real services for tests: a missing one skips with the reason, or fails when CI requires them all."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("PREP_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip a test whose service is missing, unless PREP_REQUIRE_SERVICES=1 (CI) makes it a failure."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (PREP_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(reason)

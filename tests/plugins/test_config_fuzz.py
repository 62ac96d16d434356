"""Fuzz the config loaders: whatever the file holds, the loader returns a model or raises a located ConfigError.

Inputs are the valid catalog, suite, access policy and UAT plan changed the way a careless or hostile
editor would: bytes replaced, inserted or cut (YAML punctuation, anchors and aliases, tags, bytes that
are not UTF-8), and values swapped for arbitrary YAML data (numbers that are not finite, huge
integers, impossible dates, deep nesting). Any other exception, or a load slower than the bound, fails.
Derandomised and without an example database, so ``make test`` runs the same few seconds every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prep_support.access.policy import load_policy
from prep_support.catalog import load_catalog
from prep_support.config_errors import ConfigError
from prep_support.quality.config import load_suite
from prep_support.uat import load_plan
from tests.plugins.access.conftest import POLICY_YAML
from tests.plugins.test_config_hostile import CATALOG, PLAN, SUITE

KNOWN = {"estate_http", "estate_db"}
SECONDS_PER_LOAD = 2.0
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PIECES = [b"&a ", b"*a", b"!!python/object/apply:os.system [id]", b"!!binary", b"\xff", b"\xc3", b"\x00",
          b"\t", b"\n", b": ", b"- ", b"[", b"]", b"{", b"}", b"<<: *a", b"? ", b"|", b"'", b'"', b"%YAML 1.1\n",
          b"---\n", b".nan", b"-.inf", b"2030-02-30", b"9" * 5000, b"http://u:p@h/", b"<!here>", b"#"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["2030-02-30", "1999-01-01", "<!here>", "http://user:secret@host/x",
                                           "SELECT 1", "../../etc/passwd", "*", "$.a"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)


@st.composite
def byte_edits(draw: st.DrawFn, text: str) -> bytes:
    """``text`` with a few bytes replaced, inserted or removed at arbitrary places."""
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "replace", "cut"]))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=3)))
        if action == "insert":
            data[at:at] = piece
        elif action == "replace":
            data[at:at + len(piece)] = piece
        else:
            del data[at:at + draw(st.integers(1, 40))]
    return bytes(data)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def value_swaps(draw: st.DrawFn, text: str) -> bytes:
    """``text`` parsed, one value anywhere in it replaced by arbitrary YAML data, and written back."""
    data = yaml.safe_load(text)
    where = draw(st.sampled_from(_paths(data)[1:]))
    node = data
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = draw(values)
    return yaml.safe_dump(data, allow_unicode=True).encode()


RAW_VALUES = ["2030-02-30", "2030-02-30T25:00:00", ".nan", "-.inf", "9" * 5000, "*nowhere", "&a [*a]",
              "!!python/name:os.system", "!!binary AAAA", "{a: 1, a: 2}", "[" * 150, "? [a]\n  : b", "|\n x",
              "http://user:secret@host/health", "<!here>", "0x_1", "1e999", "~", "'", "\"\\x\""]


@st.composite
def raw_value_swaps(draw: st.DrawFn, text: str) -> bytes:
    """``text`` with the value of one ``key: value`` line replaced by raw YAML (dates, tags, aliases, ...)."""
    lines = text.splitlines()
    candidates = [index for index, line in enumerate(lines) if ": " in line]
    index = draw(st.sampled_from(candidates))
    key = lines[index].split(": ", 1)[0]
    lines[index] = f"{key}: {draw(st.sampled_from(RAW_VALUES))}"
    return ("\n".join(lines) + "\n").encode()


def documents(text: str) -> st.SearchStrategy[bytes]:
    return st.one_of(byte_edits(text), value_swaps(text), raw_value_swaps(text))


def only_located_errors(load: Callable[[Path], Any], path: Path, content: bytes) -> None:
    path.write_bytes(content)
    started = time.monotonic()
    try:
        load(path)
    except ConfigError as error:
        assert str(error).startswith(str(path)), f"{error!r} does not name the file"
    assert time.monotonic() - started < SECONDS_PER_LOAD, f"loading took {time.monotonic() - started:.1f} s"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    patch = pytest.MonkeyPatch()
    patch.setenv("PREP_SUPPORT_CACHE_DIR", str(folder / "cache"))  # each fuzzed catalog would be cached
    request.addfinalizer(patch.undo)
    return folder


def test_catalog_loader(folder: Path) -> None:
    @FUZZ
    @given(documents(CATALOG))
    def run(content: bytes) -> None:
        only_located_errors(lambda path: load_catalog(path, KNOWN), folder / "services.yaml", content)
    run()


def test_suite_loader(folder: Path) -> None:
    @FUZZ
    @given(documents(SUITE))
    def run(content: bytes) -> None:
        only_located_errors(lambda path: load_suite(path, KNOWN), folder / "orders.yaml", content)
    run()


def test_policy_loader(folder: Path) -> None:
    @FUZZ
    @given(documents(POLICY_YAML))
    def run(content: bytes) -> None:
        only_located_errors(load_policy, folder / "policy.yaml", content)
    run()


def test_plan_loader(folder: Path) -> None:
    @FUZZ
    @given(documents(PLAN))
    def run(content: bytes) -> None:
        only_located_errors(lambda path: load_plan(path.stem, path.parent), folder / "release.yaml", content)
    run()

"""docker-compose.yaml and the Dockerfile agree with the project they deploy.

No Docker engine is needed: the compose file is read as YAML (anchors and ``<<`` merges resolved
the way Compose resolves them) and checked against the repository: the services and their
commands, the folders they mount, the Connections of ``include/config/connections.yaml``, the lock
the image installs, and the compose-spec rules that would otherwise only fail at ``docker compose
up``. When the ``docker compose`` CLI is installed it validates the file as well.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "requirements.txt"
PYPROJECT = ROOT / "pyproject.toml"
CONNECTIONS_DOC = ROOT / "include" / "config" / "connections.yaml"
ENV_EXAMPLE = ROOT / "docker" / "compose.env.example"

COMMON = "x-airflow-common"
FAB_AUTH_MANAGER = "auth_managers.support_fab.SupportFabAuthManager"

# The long-running Airflow components and the command each one runs.
AIRFLOW_COMMANDS = [
    pytest.param("airflow-apiserver", "api-server", id="apiserver"),
    pytest.param("airflow-scheduler", "scheduler", id="scheduler"),
    pytest.param("airflow-dag-processor", "dag-processor", id="dag-processor"),
    pytest.param("airflow-triggerer", "triggerer", id="triggerer"),
    pytest.param("airflow-worker", "celery worker", id="worker"),
]
AIRFLOW_SERVICES = [p.values[0] for p in AIRFLOW_COMMANDS] + ["airflow-init"]
BACKING_SERVICES = [
    pytest.param("postgres", "postgres", id="postgres"),
    pytest.param("support-db", "postgres", id="support-db"),
    pytest.param("redis", "redis", id="redis"),
]
# Project folder -> where every Airflow container sees it.
PROJECT_MOUNTS = {"dags": "/opt/airflow/dags", "plugins": "/opt/airflow/plugins", "include": "/opt/airflow/include"}

# Connection types Airflow core knows without a provider (airflow.providers_manager).
CORE_CONN_TYPES = {"generic", "email"}

# Top-level and service keys of the Compose Specification (compose-spec/compose-spec,
# schema/compose-spec.json); `x-` extensions are allowed everywhere.
TOP_LEVEL_KEYS = {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"}
SERVICE_KEYS = {
    "annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "models", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
    "pull_refresh_after", "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
    "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}  # fmt: skip
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DEPENDS_ON_KEYS = {"condition", "restart", "required"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
RESTART_POLICY = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")

# `$$` (a literal dollar), `${NAME}`, `${NAME:-default}` / `-` / `:?` / `?` / `:+` / `+`, `$NAME`;
# any other `${` is something this reader (and, likely, Compose) cannot parse.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<broken>\{))"
)
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[^\s=;]+(\s*;.+)?$")


# --- reading the files -------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def service(name: str) -> dict[str, Any]:
    assert name in services(), f"docker-compose.yaml has no service {name!r}"
    return services()[name]


def interpolate_defaults(value: str) -> str:
    """``value`` as Compose would make it with no variable set: every substitution by its default."""

    def substitute(match: re.Match[str]) -> str:
        assert not match["broken"], f"unparsable substitution in {value!r}"
        if match["escaped"]:
            return "$"
        if match["op"] in (":-", "-"):
            return match["arg"]
        if match["op"] in (":?", "?"):
            raise AssertionError(f"{match[0]} is required: the file does not work without a .env")
        return ""  # ${NAME}, $NAME and ${NAME:+alt} with NAME unset

    return _INTERPOLATION.sub(substitute, value)


def variables(value: Any) -> Iterator[tuple[str, str | None]]:
    """(name, default) of every substitution in the strings of ``value``, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from variables(key)
            yield from variables(item)
    elif isinstance(value, list):
        for item in value:
            yield from variables(item)
    elif isinstance(value, str):
        for match in _INTERPOLATION.finditer(value):
            assert not match["broken"], f"unparsable substitution in {value!r}"
            name = match["braced"] or match["bare"]
            if name:
                yield name, match["arg"] if match["op"] in (":-", "-") else None


def environment(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping with defaults substituted (list or mapping form)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: interpolate_defaults(str(value)) for key, value in env.items() if value is not None}


def bind_mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts, host paths as written (``./dags``)."""
    mounts = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts[volume["target"]] = interpolate_defaults(volume["source"])
            continue
        source, _, rest = interpolate_defaults(volume).partition(":")
        if rest and source.startswith((".", "/", "~")):
            mounts[rest.split(":")[0]] = source
    return mounts


def named_volumes(svc: dict[str, Any]) -> set[str]:
    names = set()
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                names.add(volume["source"])
            continue
        source, _, rest = interpolate_defaults(volume).partition(":")
        if rest and not source.startswith((".", "/", "~")):
            names.add(source)
    return names


def host_path(svc: dict[str, Any], container_path: str) -> Path | None:
    """Where ``container_path`` comes from on the host, through the service's bind mounts."""
    wanted = PurePosixPath(container_path)
    for target, source in bind_mounts(svc).items():
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            return (ROOT / source).resolve() / wanted.relative_to(target)
    return None


def command_text(svc: dict[str, Any]) -> str:
    """The command as one string, shell line continuations joined."""
    command = svc.get("command", "")
    text = "\n".join(command) if isinstance(command, list) else str(command)
    return re.sub(r"\\\n\s*", " ", text)


def depends_on(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


@cache
def pins() -> dict[str, str]:
    """Canonical distribution name -> pinned version, from requirements.txt."""
    result = {}
    for line in requirements_lines():
        name, _, version = line.split(";")[0].strip().partition("==")
        result[canonicalize_name(name.split("[")[0])] = version
    return result


def requirements_lines() -> list[str]:
    lines = (line.strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def documented_conn_ids() -> list[str]:
    doc = yaml.safe_load(CONNECTIONS_DOC.read_text())
    return [entry["conn_id"] for entry in doc["connections"]]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            result.append((instruction.upper(), args.strip()))
    return result


def dockerfile_from_tag() -> str:
    """The tag of the final stage's base image, which must be the official Airflow image."""
    froms = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert froms, "the Dockerfile has no FROM"
    reference = next(word for word in froms[-1].split() if not word.startswith("--"))
    image, _, tag = reference.partition(":")
    assert image == "apache/airflow", f"the image must extend the official apache/airflow, not {image!r}"
    return tag


@cache
def provider_connection_types() -> dict[str, str]:
    """conn_type -> distribution, read from each installed provider's ``get_provider_info`` literal.

    Read with ``ast`` rather than imported, so the test needs no Airflow configuration.
    """
    result = {}
    for ep in entry_points(group="apache_airflow_provider"):
        module, _, function = ep.value.partition(":")
        source = Path(ep.dist.locate_file(module.replace(".", "/") + ".py"))
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == function:
                returned = next(n.value for n in ast.walk(node) if isinstance(n, ast.Return))
                try:
                    info = ast.literal_eval(returned)
                except ValueError:  # not a plain literal: this provider cannot be read this way
                    continue
                for conn in info.get("connection-types", []):
                    result[conn["connection-type"]] = canonicalize_name(ep.dist.metadata["Name"])
    return result


# --- services and commands ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "command"), AIRFLOW_COMMANDS)
def test_airflow_component_runs_its_command(name: str, command: str) -> None:
    svc = service(name)
    assert command_text(svc) == command
    assert "entrypoint" not in svc, f"{name} must keep the image's entrypoint (it waits for the database)"
    assert svc.get("restart") == "always"
    assert "healthcheck" in svc, f"{name} has no healthcheck"


@pytest.mark.parametrize(("name", "image"), BACKING_SERVICES)
def test_backing_service_is_healthchecked(name: str, image: str) -> None:
    svc = service(name)
    assert str(svc.get("image", "")).split(":")[0] == image
    assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck test"


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "postgres", "support-db", "redis"])
def test_required_service_starts_with_plain_up(name: str) -> None:
    assert not service(name).get("profiles"), f"{name} is behind a profile: `docker compose up` skips it"


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(r"^set -[a-z]*e[a-z]*\b[\s\S]*\bairflow db migrate\b", id="stops-at-first-failure"),
        pytest.param(r"\bairflow db migrate\b", id="metadata-db"),
        pytest.param(r"\bairflow users create\b[^\n]*--role Admin\b", id="admin-user"),
        pytest.param(r"\bpython -m prep_support\.migrate\b", id="support-db"),
        # Before any DAG is stored: FAB refuses a DAG whose access_control names a missing role.
        pytest.param(r"\bpython /opt/airflow/scripts/create_roles\.py\b", id="roles"),
    ],
)
def test_init_runs_setup_step(step: str) -> None:
    script = command_text(service("airflow-init"))
    assert re.search(step, script, re.MULTILINE), f"airflow-init does not match {step!r}:\n{script}"


def test_init_creates_the_admin_after_the_metadata_tables() -> None:
    script = command_text(service("airflow-init"))
    assert script.index("airflow db migrate") < script.index("airflow users create")
    # `users create` syncs FAB's built-in roles and permissions; ours come after, on top of them.
    assert script.index("airflow users create") < script.index("scripts/create_roles.py")


def test_init_roles_script_is_mounted() -> None:
    init = service("airflow-init")
    script = re.search(r"\bpython (/opt/airflow/scripts/\S+\.py)", command_text(init)).group(1)
    assert host_path(init, script) == ROOT / "scripts" / "create_roles.py"


def test_init_modules_exist_in_the_mounted_plugins() -> None:
    init = service("airflow-init")
    python_path = environment(init).get("PYTHONPATH", "").split(":")
    modules = re.findall(r"\bpython -m ([\w.]+)", command_text(init))
    assert modules, "airflow-init runs no python module"
    for module in modules:
        relative = Path(*module.split("."))
        candidates = [
            base / suffix
            for entry in python_path
            if (base := host_path(init, entry))
            for suffix in (relative.with_suffix(".py"), relative / "__main__.py")
        ]
        assert any(c.is_file() for c in candidates), f"`python -m {module}` finds nothing in {candidates}"


def test_long_running_services_wait_for_init() -> None:
    for name in AIRFLOW_SERVICES[:-1]:
        condition = depends_on(service(name)).get("airflow-init", {}).get("condition")
        assert condition == "service_completed_successfully", f"{name} does not wait for airflow-init"


# --- mounts --------------------------------------------------------------------------------------


def test_every_mounted_host_path_exists() -> None:
    missing = [
        f"{name}: {source} -> {target}"
        for name, svc in services().items()
        for target, source in bind_mounts(svc).items()
        if not (ROOT / source).exists()
    ]
    assert not missing, f"host paths not in the repository: {missing}"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_project_folders_are_mounted_into_airflow_service(name: str) -> None:
    mounts = bind_mounts(service(name))
    for folder, target in PROJECT_MOUNTS.items():
        assert target in mounts, f"{name} does not mount {folder}/ at {target}"
        assert (ROOT / mounts[target]).resolve() == ROOT / folder, f"{name}: {target} is not ./{folder}"


@pytest.mark.parametrize(
    ("variable", "folder"),
    [
        pytest.param("AIRFLOW__CORE__DAGS_FOLDER", "dags", id="dags_folder"),
        pytest.param("AIRFLOW__CORE__PLUGINS_FOLDER", "plugins", id="plugins_folder"),
        pytest.param("PREP_SUPPORT_INCLUDE_DIR", "include", id="include_dir"),
    ],
)
def test_configured_folders_are_the_mounted_ones(variable: str, folder: str) -> None:
    for name in AIRFLOW_SERVICES:
        svc = service(name)
        path = environment(svc).get(variable)
        if path is not None:  # unset means Airflow's default, /opt/airflow/<folder>
            assert host_path(svc, path) == ROOT / folder, f"{name}: {variable}={path} is not ./{folder}"


def test_pythonpath_entries_are_mounted_project_folders() -> None:
    for name in AIRFLOW_SERVICES:
        svc = service(name)
        entries = [e for e in environment(svc).get("PYTHONPATH", "").split(":") if e]
        assert PROJECT_MOUNTS["plugins"] in entries, f"{name}: plugins/ is not on PYTHONPATH"
        for entry in entries:
            source = host_path(svc, entry)
            assert source is not None and source.is_dir(), f"{name}: PYTHONPATH entry {entry} is not mounted"


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        pytest.param("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor", id="executor"),
        pytest.param("AIRFLOW__CORE__AUTH_MANAGER", FAB_AUTH_MANAGER, id="auth-manager"),
        pytest.param("AIRFLOW__CORE__LOAD_EXAMPLES", "false", id="no-examples"),
        pytest.param(
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://airflow-apiserver:8080/execution/", id="exec-api"
        ),
    ],
)
def test_every_airflow_service_is_configured(variable: str, expected: str) -> None:
    for name in AIRFLOW_SERVICES:
        actual = environment(service(name)).get(variable)
        assert (actual or "").lower() == expected.lower(), f"{name}: {variable}={actual!r}, not {expected!r}"


def test_airflow_services_keep_the_common_environment() -> None:
    """A service that sets its own ``environment`` must merge the common one, not replace it."""
    common = set(environment(compose()[COMMON]))
    users = [name for name, svc in services().items() if svc.get("image") == compose()[COMMON]["image"]]
    assert set(AIRFLOW_SERVICES) <= set(users), "every Airflow service must use the x-airflow-common image"
    for name in users:
        lost = common - set(environment(service(name)))
        assert not lost, f"{name} drops common variables {sorted(lost)}"


def test_auth_manager_is_fab_from_the_locked_provider() -> None:
    """Ours (plugins/, mounted in every container) extends the FAB auth manager of the pinned provider."""
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    module, _, cls = FAB_AUTH_MANAGER.rpartition(".")
    assert (ROOT / "plugins" / (module.replace(".", "/") + ".py")).is_file()
    assert issubclass(getattr(importlib.import_module(module), cls), FabAuthManager)
    providers = entry_points(group="apache_airflow_provider")
    fab = next((ep for ep in providers if ep.value.startswith("airflow.providers.fab.")), None)
    assert fab is not None, "apache-airflow-providers-fab is not installed"
    assert canonicalize_name(fab.dist.metadata["Name"]) in pins()


@pytest.mark.parametrize(
    ("variable", "service_name", "port"),
    [
        pytest.param("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgres", None, id="metadata-db"),
        pytest.param("AIRFLOW__CELERY__RESULT_BACKEND", "postgres", None, id="result-backend"),
        pytest.param("AIRFLOW__CELERY__BROKER_URL", "redis", 6379, id="broker"),
        pytest.param("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "airflow-apiserver", 8080, id="execution-api"),
    ],
)
def test_urls_reach_their_service(variable: str, service_name: str, port: int | None) -> None:
    url = urlsplit(environment(compose()[COMMON])[variable])
    assert url.hostname == service_name, f"{variable} points at {url.hostname}, not the {service_name} service"
    target = service(service_name)
    if port is not None:  # the port the URL uses is the one the container listens on
        assert (url.port or port) == port
        listening = [interpolate_defaults(str(p)).rsplit(":", 1)[-1] for p in target.get("ports", [])]
        listening += [str(p) for p in target.get("expose", [])]
        assert str(port) in listening, f"{service_name} neither publishes nor exposes {port}"
    if url.username:  # credentials must be the ones the PostgreSQL container is created with
        env = environment(target)
        assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
        assert url.path.lstrip("/") == env["POSTGRES_DB"]


@pytest.mark.parametrize(
    ("variable", "marker", "distribution"),
    [
        pytest.param("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor", "apache-airflow-providers-celery", id="celery"),
        pytest.param("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "+psycopg2", "psycopg2-binary", id="psycopg2"),
        pytest.param("AIRFLOW__CELERY__RESULT_BACKEND", "db+postgresql", "psycopg2-binary", id="result-psycopg2"),
        pytest.param("AIRFLOW__CELERY__BROKER_URL", "redis://", "redis", id="redis"),
    ],
)
def test_lock_has_what_the_configuration_needs(variable: str, marker: str, distribution: str) -> None:
    value = environment(compose()[COMMON])[variable]
    assert marker in value, f"{variable}={value!r} no longer uses {marker!r}: update this table"
    assert canonicalize_name(distribution) in pins(), f"{variable} needs {distribution}, not in requirements.txt"


# --- Connections ---------------------------------------------------------------------------------


@pytest.mark.parametrize("conn_id", documented_conn_ids())
def test_documented_connection_is_defined(conn_id: str) -> None:
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    env = environment(compose()[COMMON])
    assert variable in env, f"{conn_id} (include/config/connections.yaml) has no {variable}"
    try:
        conn = json.loads(env[variable])
    except json.JSONDecodeError as err:
        pytest.fail(f"{variable} with its defaults is not JSON ({err}): {env[variable]}")
    assert isinstance(conn, dict) and isinstance(conn.get("conn_type"), str) and conn["conn_type"]
    conn_type = conn["conn_type"]
    if conn_type not in CORE_CONN_TYPES:
        distribution = provider_connection_types().get(conn_type)
        assert distribution, f"{variable}: no installed provider has conn_type {conn_type!r}"
        assert distribution in pins(), f"{variable}: {distribution} (conn_type {conn_type}) is not locked"
    if "port" in conn:
        assert isinstance(conn["port"], int), f"{variable}: port {conn['port']!r} is not a number"


def test_support_db_connection_reaches_the_support_db_service() -> None:
    conn = json.loads(environment(compose()[COMMON])["AIRFLOW_CONN_SUPPORT_DB"])
    assert conn["conn_type"] == "postgres"
    assert conn["host"] == "support-db"
    env = environment(service("support-db"))
    assert (conn["login"], conn["password"], conn["schema"]) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )


def test_no_connection_is_defined_without_documentation() -> None:
    env = environment(compose()[COMMON])
    defined = {key.removeprefix("AIRFLOW_CONN_").lower() for key in env if key.startswith("AIRFLOW_CONN_")}
    undocumented = defined - set(documented_conn_ids())
    assert not undocumented, f"document {sorted(undocumented)} in include/config/connections.yaml"


# --- variables -----------------------------------------------------------------------------------


def test_every_variable_has_a_default() -> None:
    """``docker compose up`` works with no .env at all."""
    bare = sorted({name for name, default in variables(compose()) if default is None})
    assert not bare, f"variables without a ${{NAME:-default}}: {bare}"


def test_each_variable_has_one_default() -> None:
    """The same variable (a password used by a database and its clients) defaults alike everywhere."""
    defaults: dict[str, set[str | None]] = {}
    for name, default in variables(compose()):
        defaults.setdefault(name, set()).add(default)
    conflicting = {name: values for name, values in defaults.items() if len(values) > 1}
    assert not conflicting, f"different defaults for {conflicting}"


def test_env_example_documents_every_variable_with_its_default() -> None:
    documented = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{ENV_EXAMPLE.name}: not NAME=value: {line!r}"
            documented[name.strip()] = value.strip()
    used = dict(variables(compose()))
    assert sorted(set(used) - set(documented)) == [], f"undocumented in {ENV_EXAMPLE.name}"
    assert sorted(set(documented) - set(used)) == [], f"documented in {ENV_EXAMPLE.name} but unused"
    differing = {name: (documented[name], used[name]) for name in used if documented[name] != used[name]}
    assert not differing, f"{ENV_EXAMPLE.name} value != compose default: {differing}"


# --- compose structure ---------------------------------------------------------------------------


def _keys(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_merge_keys_are_resolved() -> None:
    assert "<<" not in set(_keys(compose())), "a `<<:` merge was not resolved (a merge of a non-mapping?)"
    assert compose()[COMMON]["environment"], "x-airflow-common has no environment"


def test_top_level_keys_follow_the_compose_spec() -> None:
    unknown = {k for k in compose() if k not in TOP_LEVEL_KEYS and not k.startswith("x-")}
    assert not unknown, f"not Compose top-level keys: {unknown}"


def test_service_keys_follow_the_compose_spec() -> None:
    for name, svc in services().items():
        unknown = {k for k in svc if k not in SERVICE_KEYS and not k.startswith("x-")}
        assert not unknown, f"{name}: unknown keys {unknown}"
        assert "image" in svc or "build" in svc, f"{name} has neither image nor build"
        assert RESTART_POLICY.match(str(svc.get("restart", "no"))), f"{name}: restart {svc['restart']!r}"
        for key in ("image", "user", "container_name", "hostname", "working_dir"):
            assert isinstance(svc.get(key, ""), str), f"{name}: {key} must be a string (quote it)"
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else ():
            assert isinstance(value, str | int | float | bool | None), f"{name}: {key} is not a scalar"


def test_healthchecks_are_well_formed() -> None:
    for name, svc in services().items():
        check = svc.get("healthcheck")
        if check is None:
            continue
        unknown = {k for k in check if k not in HEALTHCHECK_KEYS and not k.startswith("x-")}
        assert not unknown, f"{name}: unknown healthcheck keys {unknown}"
        test = check["test"]
        assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL", "NONE"), f"{name}: test {test!r}"
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in check:
                assert DURATION.match(str(check[key])), f"{name}: {key} {check[key]!r} is not a duration"


def test_dependencies_are_defined_and_satisfiable() -> None:
    for name, svc in services().items():
        for target, spec in depends_on(svc).items():
            assert target in services(), f"{name} depends on undefined service {target!r}"
            assert target != name, f"{name} depends on itself"
            unknown = {k for k in spec if k not in DEPENDS_ON_KEYS and not k.startswith("x-")}
            assert not unknown, f"{name} -> {target}: unknown keys {unknown}"
            assert "condition" in spec, f"{name} -> {target}: the long form needs a condition"
            condition = spec["condition"]
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target} to be healthy: no check"
            if condition == "service_completed_successfully":
                restart = services()[target].get("restart", "no")
                assert restart in ("no", "on-failure"), f"{target} (restart: {restart}) never completes"


def test_dependencies_have_no_cycle() -> None:
    graph = {name: depends_on(svc).keys() & services().keys() for name, svc in services().items()}
    done: set[str] = set()
    while graph.keys() - done:
        ready = {n for n in graph.keys() - done if graph[n] <= done}
        assert ready, f"dependency cycle among {sorted(graph.keys() - done)}"
        done |= ready


def test_named_volumes_are_declared_and_used() -> None:
    used = set().union(*(named_volumes(svc) for svc in services().values()))
    declared = set(compose().get("volumes") or {})
    assert used - declared == set(), "named volumes used but not declared"
    assert declared - used == set(), "volumes declared but never mounted"


# --- the image -----------------------------------------------------------------------------------


def test_airflow_services_build_the_project_image() -> None:
    build = compose()[COMMON].get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    dockerfile = "Dockerfile" if isinstance(build, str) else (build or {}).get("dockerfile", "Dockerfile")
    assert context is not None, "x-airflow-common does not build our image"
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE


def pip_installs() -> Iterator[tuple[list[str], PurePosixPath]]:
    """(arguments after ``pip install``, working directory) of every pip install the Dockerfile runs."""
    workdir = PurePosixPath("/opt/airflow")  # WORKDIR of apache/airflow
    for instruction, args in dockerfile_instructions():
        if instruction == "WORKDIR":
            workdir = workdir / args
        elif instruction == "RUN":
            for command in re.split(r"&&|\|\||;", args):
                words = command.split()
                for i in range(len(words) - 1):
                    if words[i].endswith("pip") and words[i + 1] == "install":
                        yield words[i + 2 :], workdir
                        break


def copied_requirements() -> set[PurePosixPath]:
    """Where the Dockerfile copies requirements.txt to, as absolute image paths."""
    workdir, result = PurePosixPath("/opt/airflow"), set()
    for instruction, args in dockerfile_instructions():
        if instruction == "WORKDIR":
            workdir = workdir / args
        elif instruction in ("COPY", "ADD"):
            words = [word for word in args.split() if not word.startswith("--")]
            if "requirements.txt" in words[:-1]:
                dest = words[-1]
                target = workdir / dest
                result.add(target / "requirements.txt" if dest.endswith("/") or len(words) > 2 else target)
    return result


def test_image_installs_exactly_the_lock() -> None:
    copied = copied_requirements()
    assert copied, "the Dockerfile does not COPY requirements.txt from the repository root"
    installs = list(pip_installs())
    assert installs, "the Dockerfile does not pip install"
    for words, workdir in installs:
        files = {workdir / words[i + 1] for i, word in enumerate(words[:-1]) if word == "-r"}
        assert files, f"pip install {' '.join(words)} does not install -r requirements.txt"
        assert files <= copied, f"pip installs {files}, but requirements.txt is copied to {copied}"
        others = [w for i, w in enumerate(words) if not w.startswith("-") and (i == 0 or words[i - 1] != "-r")]
        assert not others, f"installs {others} beside the lock: add them to requirements.in instead"
        assert "--no-cache-dir" in words, "pip's cache would stay in the image"


def test_image_airflow_version_is_the_locked_one() -> None:
    tag = dockerfile_from_tag()
    version, _, python = tag.partition("-python")
    assert pins().get("apache-airflow") == version, f"FROM tag {tag} vs apache-airflow=={pins()['apache-airflow']}"
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    assert python and SpecifierSet(requires).contains(python), f"FROM tag Python {python!r} vs {requires}"
    assert pins().get("apache-airflow-core") in (None, version)


def test_lock_pins_every_requirement_exactly() -> None:
    loose = [line for line in requirements_lines() if not _PIN.match(line)]
    assert not loose, f"requirements.txt lines that are not exact == pins: {loose}"
    assert "apache-airflow" in pins()


# --- the Compose CLI -----------------------------------------------------------------------------


def _compose_cli() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (standalone), if one answers."""
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        try:
            probe = subprocess.run([*cli, "version"], capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return cli
    return None


def test_compose_cli_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        service_missing("neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)")
    # `config` only parses, interpolates and validates against the spec: no engine needed.
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

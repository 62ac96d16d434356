"""A real OpenLDAP ``slapd`` standing in for Active Directory, as a child process.

:class:`SlapdProcess` writes a throw-away ``cn=config`` (``slapadd -n0``) under its state
directory with a schema carrying the AD attributes the directory hook reads, starts
``/usr/sbin/slapd -d 0 -h ldap://127.0.0.1:<port>/`` in the foreground as its child, seeds the
population of :mod:`sandbox.directory_seed` over LDAP, and kills the child on exit (also when
the ``with`` block raises, and, through ``PR_SET_PDEATHSIG``, when our process is killed).

The schema (``cn=ad``): ``sAMAccountName``, ``userAccountControl``, ``lastLogonTimestamp`` and
``employeeID`` with their Active Directory OIDs (https://learn.microsoft.com/en-us/windows/win32/adschema/
a-samaccountname, .../a-useraccountcontrol, .../a-lastlogontimestamp, .../a-employeeid), on an
auxiliary class ``adUser`` beside ``inetOrgPerson``; AD's structural class ``group`` (which, unlike
``groupOfNames``, may be empty). ``memberOf`` is kept by slapd's **memberof overlay** from the
groups' ``member`` values, as AD keeps it (https://www.openldap.org/doc/admin25/overlays.html).
``manager`` is cosine's DN-valued attribute, as in AD.

Layout: ``dc=example,dc=com`` with ``ou=Users`` (``cn=<sAMAccountName>``) and ``ou=Groups``
(``cn=<group name>``); bind as ``cn=admin,dc=example,dc=com``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from sandbox import directory_seed as seed
from sandbox.child import stop_child

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
HOST = "127.0.0.1"
BASE_DN = "dc=example,dc=com"
USERS_DN = f"ou=Users,{BASE_DN}"
GROUPS_DN = f"ou=Groups,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "sandbox-ldap-password"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


AD_SCHEMA_LDIF = """\
dn: cn=ad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: ad
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.1696 NAME 'lastLogonTimestamp'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.35 NAME 'employeeID'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.4203.666.11.900.1 NAME 'adUser'
  DESC 'Active Directory account attributes on an OpenLDAP person'
  SUP top AUXILIARY MUST sAMAccountName
  MAY ( userAccountControl $ lastLogonTimestamp $ employeeID ) )
olcObjectClasses: ( 1.2.840.113556.1.5.8 NAME 'group'
  DESC 'An Active Directory group: may be empty'
  SUP top STRUCTURAL MUST cn MAY ( member $ sAMAccountName $ description ) )
"""

CONFIG_LDIF = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {state_dir}/slapd.pid
olcArgsFile: {state_dir}/slapd.args

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {module_dir}
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://{schema_dir}/core.ldif

include: file://{schema_dir}/cosine.ldif

include: file://{schema_dir}/inetorgperson.ldif

include: file://{state_dir}/ad.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {base_dn}
olcRootDN: {admin_dn}
olcRootPW: {admin_password}
olcDbDirectory: {state_dir}/data
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: sAMAccountName eq
olcDbIndex: member eq
olcAccess: {{0}}to * by dn.exact="{admin_dn}" manage by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfGroupOC: group
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
olcMemberOfRefInt: TRUE
olcMemberOfDangling: ignore
"""


class SlapdError(RuntimeError):
    """slapd could not be configured or started; the message carries its output."""


def slapd_available() -> bool:
    return SLAPD.exists() and SLAPADD.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class SlapdProcess:
    """``slapd`` on a free loopback port with a temporary configuration, seeded.

    >>> with SlapdProcess() as directory:
    ...     os.environ.update(directory.connection_env())
    """

    def __init__(self, state_dir: Path | None = None, port: int = 0, seed_population: bool = True) -> None:
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="prep-slapd-")).resolve()
        self.port = port
        self.seed_population = seed_population
        self.log_file = self.state_dir / "slapd.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://{HOST}:{self.port}/"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> SlapdProcess:
        if not slapd_available():
            raise SlapdError(f"{SLAPD} (Debian package slapd) is not installed")
        self._configure()
        self.port = self.port or free_port()
        self._launch()
        try:
            if self.seed_population:
                self.reset()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Kill slapd and start it again on the same port and data (drops every open connection)."""
        self.kill()
        self._launch()

    def kill(self) -> None:
        """SIGKILL the child: what a crash or a dropped network looks like to a client."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        stop_child(self._process, STOP_TIMEOUT_S)
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def connection_env(self, conn_id: str = "ldap_default") -> dict[str, str]:
        """``AIRFLOW_CONN_LDAP_DEFAULT`` for :class:`hooks.directory.DirectoryHook` pointing here."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}

    def connection(self) -> dict:
        return {"conn_type": "generic", "host": HOST, "port": self.port, "login": ADMIN_DN, "password": ADMIN_PASSWORD,
                "extra": {"base_dn": BASE_DN, "users_dn": USERS_DN, "groups_dn": GROUPS_DN, "use_ssl": False,
                          "page_size": 20}}

    def reset(self) -> None:
        """Delete every user and group and add the seeded population again (tests that change it call this)."""
        import ldap3

        with self._admin() as conn:
            for parent in (GROUPS_DN, USERS_DN):
                conn.search(parent, "(objectClass=*)", ldap3.LEVEL, attributes=[])
                for entry in list(conn.response):
                    if entry.get("type") == "searchResEntry":
                        _ok(conn, conn.delete(entry["dn"]), f"delete {entry['dn']}")
            for dn, attributes in _base_entries():
                if not conn.add(dn, attributes=attributes) and conn.result["description"] != "entryAlreadyExists":
                    raise SlapdError(f"cannot add {dn}: {conn.result}")
            for dn, attributes in seed_entries(seed.accounts("ad")):
                _ok(conn, conn.add(dn, attributes=attributes), f"add {dn}")
            for dn, attributes in group_entries(seed.accounts("ad")):
                _ok(conn, conn.add(dn, attributes=attributes), f"add {dn}")

    def __enter__(self) -> SlapdProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------

    def _configure(self) -> None:
        config_dir, data_dir = self.state_dir / "slapd.d", self.state_dir / "data"
        shutil.rmtree(config_dir, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        config_dir.mkdir(parents=True)
        data_dir.mkdir(parents=True)
        (self.state_dir / "ad.ldif").write_text(AD_SCHEMA_LDIF)
        config = self.state_dir / "config.ldif"
        config.write_text(CONFIG_LDIF.format(
            state_dir=self.state_dir, module_dir=MODULE_DIR, schema_dir=SCHEMA_DIR, base_dn=BASE_DN,
            admin_dn=ADMIN_DN, admin_password=ADMIN_PASSWORD,
        ))
        done = subprocess.run([str(SLAPADD), "-n0", "-F", str(config_dir), "-l", str(config)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SlapdError(f"slapadd -n0 failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def _launch(self) -> None:
        log = self.log_file.open("ab")
        try:
            # -d 0: stay in the foreground (our child) without debug output.
            self._process = subprocess.Popen(
                [str(SLAPD), "-d", "0", "-F", str(self.state_dir / "slapd.d"), "-h", self.url],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise SlapdError(f"slapd exited with status {self._process.returncode}: {self._output()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise SlapdError(f"slapd did not listen on {self.url} within {START_TIMEOUT_S:.0f} s: "
                                     f"{self._output()}") from None
                time.sleep(0.05)

    def _admin(self):
        import ldap3

        server = ldap3.Server(HOST, port=self.port, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=False)

    def _output(self) -> str:
        return self.log_file.read_text(errors="replace").strip()[-2000:] or "(no output)"


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGKILL when we die, even by SIGKILL (no orphan slapd)."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1  # noqa: N806 - the name in <sys/prctl.h>
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: stop() still ends it
        pass


def _ok(conn, succeeded: bool, what: str) -> None:
    if not succeeded:
        raise SlapdError(f"{what} failed: {conn.result}")


def _base_entries() -> list[tuple[str, dict]]:
    return [
        (BASE_DN, {"objectClass": ["dcObject", "organization"], "dc": "example", "o": "Example Corp"}),
        (USERS_DN, {"objectClass": ["organizationalUnit"], "ou": "Users"}),
        (GROUPS_DN, {"objectClass": ["organizationalUnit"], "ou": "Groups"}),
    ]


def user_dn(username: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return f"cn={escape_rdn(username)},{USERS_DN}"


def group_dn(name: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return f"cn={escape_rdn(name)},{GROUPS_DN}"


def seed_entries(accounts: Iterable[seed.SeedAccount]) -> list[tuple[str, dict]]:
    """The user entries of seeded AD accounts (attributes as AD names them)."""
    from hooks.directory import ACCOUNTDISABLE, NORMAL_ACCOUNT, to_filetime

    entries = []
    for account in accounts:
        surname = account.display_name.split()[-1] if account.display_name.split() else account.username
        attributes = {
            "objectClass": ["inetOrgPerson", "adUser"],
            "cn": account.username,
            "sn": surname,
            "sAMAccountName": account.username,
            "displayName": account.display_name,
            "userAccountControl": str(NORMAL_ACCOUNT | (0 if account.enabled else ACCOUNTDISABLE)),
        }
        if account.email:
            attributes["mail"] = account.email
        if account.employee_id:
            attributes["employeeID"] = account.employee_id
        if account.last_login:
            attributes["lastLogonTimestamp"] = str(to_filetime(account.last_login))
        if account.manager:
            attributes["manager"] = user_dn(account.manager)
        entries.append((user_dn(account.username), attributes))
    return entries


def group_entries(accounts: Iterable[seed.SeedAccount]) -> list[tuple[str, dict]]:
    members: dict[str, list[str]] = {name: [] for name in seed.AD_GROUPS}
    for account in accounts:
        for group in account.groups:
            members[group].append(user_dn(account.username))
    entries = []
    for name, dns in members.items():
        attributes = {"objectClass": ["group"], "cn": name, "sAMAccountName": name}
        if dns:
            attributes["member"] = dns
        entries.append((group_dn(name), attributes))
    return entries


if __name__ == "__main__":
    # A directory to poke at by hand: prints its Connection and waits for Ctrl-C.
    with SlapdProcess() as running:
        print(json.dumps(running.connection_env(), indent=2), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

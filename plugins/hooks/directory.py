"""Active Directory (or any LDAP directory) accounts and groups over LDAP, with ldap3.

The Connection (``generic``): host, port (389; 636 with SSL), login = the bind DN, password;
extra ``base_dn``, ``users_dn`` and ``groups_dn`` (both default to ``base_dn``), ``use_ssl``
(default false), ``page_size`` (simple paged results, RFC 2696; default 500), ``timeout``
(seconds, default 30) and ``mapping_file`` (default ``include/config/access/directory.yaml``):
the attribute names behind our logical names (username, email, display_name, enabled_flag,
last_login, manager, member_of, employee_id, group_name, group_member), so a directory
naming them differently works with a copy of that file.

Every search is paged. A connection dropped in the middle of one (server restart, network)
is reopened and the search started again, skipping entries already returned: nothing is
lost or duplicated. Changes (enable, disable, group membership) are idempotent, read back
after writing, and safe to retry after a drop ("value already there" counts as done).

Active Directory specifics: ``userAccountControl`` bit 0x2 (ACCOUNTDISABLE) marks a disabled
account (https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/useraccountcontrol-manipulate-account-properties);
``lastLogonTimestamp`` is a Windows file time, 100-ns intervals since 1601-01-01 UTC, 0 = never
(https://learn.microsoft.com/en-us/windows/win32/adschema/a-lastlogontimestamp). ldap3:
https://ldap3.readthedocs.io/en/latest/searches.html#simple-paged-search.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

from airflow.sdk import BaseHook
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prep_support import paths
from prep_support.config_errors import ConfigError, line_of, location_labels, parse_config

log = logging.getLogger(__name__)
T = TypeVar("T")

ACCOUNTDISABLE = 0x2
NORMAL_ACCOUNT = 0x200
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
RECONNECT_ATTEMPTS = 5
# LDAP result codes that mean a change is already in place (RFC 4511 appendix A).
NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS = 16, 20, 68


def default_mapping_file() -> Path:
    return paths.CONFIG_DIR / "access" / "directory.yaml"


def from_filetime(value: int | str | None) -> datetime | None:
    """A Windows file time (100-ns since 1601-01-01 UTC) as an aware datetime; 0 or none = never."""
    if value in (None, "", 0, "0"):
        return None
    ticks = int(value)
    if ticks <= 0 or ticks >= 0x7FFFFFFFFFFFFFFF:  # AD writes the maximum for "never" in some attributes
        return None
    return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)


def to_filetime(moment: datetime) -> int:
    """An aware datetime as a Windows file time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    delta = moment.astimezone(UTC) - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_generalized_time(value: str | None) -> datetime | None:
    """``20261128093000Z`` (LDAP GeneralizedTime, UTC) as an aware datetime."""
    if not value:
        return None
    text = str(value).rstrip("Z").split(".")[0]
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


class AttributeMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    email: str = Field(min_length=1)
    display_name: str = Field(min_length=1)
    enabled_flag: str = Field(min_length=1)
    last_login: str = Field(min_length=1)
    manager: str = Field(min_length=1)
    member_of: str | None = None
    employee_id: str = Field(min_length=1)
    group_name: str = Field(default="cn", min_length=1)
    group_member: str = Field(min_length=1)


class DirectoryMapping(BaseModel):
    """``include/config/access/directory.yaml``: which entries are accounts and groups, and their attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_filter: str = Field(min_length=3, pattern=r"^\(.*\)$")
    group_filter: str = Field(min_length=3, pattern=r"^\(.*\)$")
    user_object_classes: list[str] = Field(min_length=1)
    last_login_format: Literal["filetime", "generalized_time"] = "filetime"
    attributes: AttributeMap


def load_mapping(path: Path | str) -> DirectoryMapping:
    """Read and validate a mapping file; ConfigError (a ValueError) names the file, the line and the field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the directory mapping: {error.strerror}") from error
    data = parse_config(path, raw)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the directory mapping must be a mapping (user_filter, attributes, ...)")
    try:
        return DirectoryMapping.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        labels, steps = location_labels(data, first["loc"])
        line = line_of(raw, steps)
        raise ConfigError(f"{path}{f' (line {line})' if line else ''}: {labels or 'mapping'}: "
                          f"{first['msg']}") from None


class DirectoryHook(BaseHook):
    """Read accounts and memberships, and enable, disable and regroup accounts in an LDAP directory."""

    conn_name_attr = "ldap_conn_id"
    default_conn_name = "ldap_default"
    conn_type = "generic"  # no provider registers an "ldap" type; host, port, login and password are all we need
    hook_name = "Active Directory (LDAP)"

    def __init__(self, *, ldap_conn_id: str = default_conn_name, sleep: Callable[[float], None] = time.sleep,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ldap_conn_id = ldap_conn_id
        self._sleep = sleep
        self._connection: Any = None

    # --- connection --------------------------------------------------------------------------------

    @cached_property
    def conn_params(self) -> dict[str, Any]:
        conn = self.get_connection(self.ldap_conn_id)
        extra = conn.extra_dejson
        missing = [name for name, value in (("host", conn.host), ("login", conn.login),
                                            ("extra base_dn", extra.get("base_dn"))) if not value]
        if missing:
            raise ValueError(f"Connection {self.ldap_conn_id!r} needs {', '.join(missing)} for the directory")
        use_ssl = str(extra.get("use_ssl", False)).lower() == "true"
        return {
            "host": conn.host, "port": conn.port or (636 if use_ssl else 389), "use_ssl": use_ssl,
            "bind_dn": conn.login, "password": conn.password or "",
            "base_dn": extra["base_dn"], "users_dn": extra.get("users_dn") or extra["base_dn"],
            "groups_dn": extra.get("groups_dn") or extra["base_dn"],
            "page_size": int(extra.get("page_size", 500)), "timeout": int(extra.get("timeout", 30)),
            "mapping_file": extra.get("mapping_file") or str(default_mapping_file()),
        }

    @cached_property
    def mapping(self) -> DirectoryMapping:
        return load_mapping(self.conn_params["mapping_file"])

    @property
    def attrs(self) -> AttributeMap:
        return self.mapping.attributes

    def get_conn(self) -> Any:
        """The bound ldap3 Connection (opened again after a drop)."""
        if self._connection is None or self._connection.closed:
            import ldap3

            params = self.conn_params
            server = ldap3.Server(params["host"], port=params["port"], use_ssl=params["use_ssl"],
                                  get_info=ldap3.NONE, connect_timeout=min(10, params["timeout"]))
            self._connection = ldap3.Connection(server, params["bind_dn"], params["password"], auto_bind=True,
                                                raise_exceptions=False, receive_timeout=params["timeout"])
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.unbind()
            except Exception:  # the socket is already gone; unbinding is a courtesy
                pass
        self._connection = None

    def _reconnecting(self, describe: str, call: Callable[[], T]) -> T:
        """Run ``call``; on a communication error reconnect and run it again (it must be safe to repeat)."""
        from ldap3.core.exceptions import LDAPCommunicationError, LDAPResponseTimeoutError

        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            try:
                return call()
            except (LDAPCommunicationError, LDAPResponseTimeoutError) as error:
                self._drop_connection()
                if attempt == RECONNECT_ATTEMPTS:
                    raise
                delay = min(5.0, 0.2 * 2 ** (attempt - 1))
                log.warning("LDAP %s: connection lost (%s); reconnecting, try %d of %d in %.1f s",
                            describe, type(error).__name__, attempt + 1, RECONNECT_ATTEMPTS, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    # --- paged search ------------------------------------------------------------------------------

    def paged_search(self, base: str, search_filter: str, attributes: list[str]) -> Iterator[dict[str, Any]]:
        """Every entry under ``base`` matching the filter, page by page (``page_size`` each).

        After a dropped connection the search restarts from its first page on a new
        connection (a paged-results cookie is bound to the old one); entries already
        yielded are skipped by DN, so the caller sees each entry exactly once.
        """
        from ldap3 import SUBTREE
        from ldap3.core.exceptions import LDAPCommunicationError, LDAPResponseTimeoutError

        seen: set[str] = set()
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            try:
                cookie: bytes | None = None
                while True:
                    conn = self.get_conn()
                    conn.search(base, search_filter, SUBTREE, attributes=attributes,
                                paged_size=self.conn_params["page_size"], paged_cookie=cookie)
                    # Kept before yielding: the caller may search on the same connection between entries.
                    response, result = conn.response or [], conn.result
                    if result["result"] != 0:
                        raise RuntimeError(f"LDAP search {search_filter} under {base} failed: "
                                           f"{result['description']} {result.get('message') or ''}")
                    cookie = result.get("controls", {}).get(PAGED_RESULTS_OID, {}).get("value", {}).get("cookie")
                    for entry in response:
                        if entry.get("type") == "searchResEntry" and entry["dn"].lower() not in seen:
                            seen.add(entry["dn"].lower())
                            yield entry
                    if not cookie:
                        return
            except (LDAPCommunicationError, LDAPResponseTimeoutError) as error:
                self._drop_connection()
                if attempt == RECONNECT_ATTEMPTS:
                    raise
                log.warning("LDAP search under %s: connection lost (%s) after %d entries; restarting the search",
                            base, type(error).__name__, len(seen))
                self._sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))

    # --- reading -----------------------------------------------------------------------------------

    def _user_attributes(self) -> list[str]:
        a = self.attrs
        return [a.username, a.email, a.display_name, a.enabled_flag, a.last_login, a.manager, a.employee_id]

    def _account(self, entry: dict[str, Any], manager_usernames: dict[str, str]) -> dict[str, Any]:
        a, values = self.attrs, entry["attributes"]
        flags = _first(values, a.enabled_flag)
        raw_login = _first(values, a.last_login)
        if self.mapping.last_login_format == "filetime":
            last_login = from_filetime(raw_login)
        else:
            last_login = from_generalized_time(raw_login)
        manager_dn = _first(values, a.manager)
        return {
            "system": "ad",
            "account_id": entry["dn"],
            "username": str(_first(values, a.username)),
            "email": _first(values, a.email) or None,
            "display_name": str(_first(values, a.display_name) or ""),
            "enabled": not (int(flags or 0) & ACCOUNTDISABLE),
            "last_login": last_login,
            "employee_id": _first(values, a.employee_id) or None,
            "manager": manager_usernames.get(str(manager_dn).lower()) if manager_dn else None,
        }

    def accounts(self) -> Iterator[dict[str, Any]]:
        """Every account (normalized rows), managers given by username."""
        entries = list(self.paged_search(self.conn_params["users_dn"], self.mapping.user_filter,
                                         self._user_attributes()))
        usernames = {entry["dn"].lower(): str(_first(entry["attributes"], self.attrs.username)) for entry in entries}
        for entry in entries:
            yield self._account(entry, usernames)

    def group_names(self) -> dict[str, str]:
        """Group DN (lower case) -> group name, for every group under groups_dn."""
        a = self.attrs
        return {entry["dn"].lower(): str(_first(entry["attributes"], a.group_name))
                for entry in self.paged_search(self.conn_params["groups_dn"], self.mapping.group_filter,
                                               [a.group_name])}

    def memberships(self) -> Iterator[dict[str, Any]]:
        """Every (account, group) pair: from the accounts' memberOf, or the groups' members without it."""
        a = self.attrs
        names = self.group_names()
        if a.member_of:
            for entry in self.paged_search(self.conn_params["users_dn"], self.mapping.user_filter, [a.member_of]):
                for group_dn in entry["attributes"].get(a.member_of) or []:
                    if str(group_dn).lower() in names:
                        yield {"system": "ad", "account_id": entry["dn"], "group": names[str(group_dn).lower()]}
            return
        users = {entry["dn"].lower(): entry["dn"] for entry in
                 self.paged_search(self.conn_params["users_dn"], self.mapping.user_filter, [a.username])}
        for entry in self.paged_search(self.conn_params["groups_dn"], self.mapping.group_filter,
                                       [a.group_name, a.group_member]):
            for member_dn in entry["attributes"].get(a.group_member) or []:
                if str(member_dn).lower() in users:
                    yield {"system": "ad", "account_id": users[str(member_dn).lower()],
                           "group": str(_first(entry["attributes"], a.group_name))}

    def _find_entry(self, base: str, search_filter: str, attributes: list[str]) -> dict[str, Any] | None:
        found = list(self.paged_search(base, search_filter, attributes))
        if len(found) > 1:
            raise ValueError(f"{len(found)} directory entries match {search_filter} under {base}; expected one")
        return found[0] if found else None

    def _user_entry(self, username: str) -> dict[str, Any] | None:
        from ldap3.utils.conv import escape_filter_chars

        search_filter = f"(&{self.mapping.user_filter}({self.attrs.username}={escape_filter_chars(username)}))"
        return self._find_entry(self.conn_params["users_dn"], search_filter, self._user_attributes())

    def _require_user(self, username: str) -> dict[str, Any]:
        entry = self._user_entry(username)
        if entry is None:
            raise ValueError(f"no directory account {username!r} under {self.conn_params['users_dn']}")
        return entry

    def _group_dn(self, group: str) -> str:
        from ldap3.utils.conv import escape_filter_chars

        search_filter = f"(&{self.mapping.group_filter}({self.attrs.group_name}={escape_filter_chars(group)}))"
        entry = self._find_entry(self.conn_params["groups_dn"], search_filter, [self.attrs.group_name])
        if entry is None:
            raise ValueError(f"no directory group {group!r} under {self.conn_params['groups_dn']}")
        return entry["dn"]

    def find_account(self, username: str) -> dict[str, Any] | None:
        """The normalized account of ``username``, or None."""
        entry = self._user_entry(username)
        if entry is None:
            return None
        managers: dict[str, str] = {}
        manager_dn = _first(entry["attributes"], self.attrs.manager)
        if manager_dn:
            manager = self._read(str(manager_dn), [self.attrs.username])
            if manager is not None:
                managers[str(manager_dn).lower()] = str(_first(manager["attributes"], self.attrs.username))
        return self._account(entry, managers)

    def _read(self, dn: str, attributes: list[str]) -> dict[str, Any] | None:
        from ldap3 import BASE

        def read() -> dict[str, Any] | None:
            conn = self.get_conn()
            conn.search(dn, "(objectClass=*)", BASE, attributes=attributes)
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            return entries[0] if entries else None

        return self._reconnecting(f"read {dn}", read)

    def groups_of(self, username: str) -> set[str]:
        """The names of the groups listing the account as a member (read from the groups themselves)."""
        from ldap3.utils.conv import escape_filter_chars

        user_dn = self._require_user(username)["dn"]
        a = self.attrs
        search_filter = f"(&{self.mapping.group_filter}({a.group_member}={escape_filter_chars(user_dn)}))"
        return {str(_first(entry["attributes"], a.group_name))
                for entry in self.paged_search(self.conn_params["groups_dn"], search_filter, [a.group_name])}

    # --- changing ----------------------------------------------------------------------------------

    def _modify(self, dn: str, changes: dict[str, Any], done_codes: tuple[int, ...] = ()) -> None:
        def modify() -> None:
            conn = self.get_conn()
            conn.modify(dn, changes)
            if conn.result["result"] != 0 and conn.result["result"] not in done_codes:
                raise RuntimeError(f"LDAP modify of {dn} failed: {conn.result['description']} "
                                   f"{conn.result.get('message') or ''}".strip())

        self._reconnecting(f"modify {dn}", modify)

    def create_account(self, *, username: str, email: str, display_name: str, employee_id: str,
                       manager_username: str | None = None) -> dict[str, Any]:
        """Create the account unless it exists; the account (normalized). New accounts start disabled, as in AD.

        An existing account is returned unchanged (enable it with :meth:`enable`).
        """
        existing = self.find_account(username)
        if existing is not None:
            return existing
        from ldap3.utils.dn import escape_rdn

        a = self.attrs
        dn = f"cn={escape_rdn(username)},{self.conn_params['users_dn']}"
        attributes: dict[str, Any] = {
            "objectClass": self.mapping.user_object_classes, "cn": username,
            "sn": display_name.split()[-1] if display_name.split() else username,
            a.username: username, a.email: email, a.display_name: display_name, a.employee_id: employee_id,
            a.enabled_flag: str(NORMAL_ACCOUNT | ACCOUNTDISABLE),
        }
        if manager_username:
            attributes[a.manager] = self._require_user(manager_username)["dn"]

        def add() -> None:
            conn = self.get_conn()
            conn.add(dn, attributes=attributes)
            if conn.result["result"] not in (0, ENTRY_ALREADY_EXISTS):
                raise RuntimeError(f"LDAP add of {dn} failed: {conn.result['description']} "
                                   f"{conn.result.get('message') or ''}".strip())

        self._reconnecting(f"add {dn}", add)
        created = self.find_account(username)
        if created is None:
            raise RuntimeError(f"directory account {username!r} was added but cannot be read back")
        return created

    def _set_enabled(self, username: str, enabled: bool) -> dict[str, Any]:
        from ldap3 import MODIFY_REPLACE

        entry = self._require_user(username)
        flags = int(_first(entry["attributes"], self.attrs.enabled_flag) or NORMAL_ACCOUNT)
        wanted = flags & ~ACCOUNTDISABLE if enabled else flags | ACCOUNTDISABLE
        changed = wanted != flags
        if changed:
            self._modify(entry["dn"], {self.attrs.enabled_flag: [(MODIFY_REPLACE, [str(wanted)])]})
            account = self.find_account(username)
            if account is None or account["enabled"] != enabled:
                raise RuntimeError(f"directory account {username!r} still reads "
                                   f"{'disabled' if enabled else 'enabled'} after the change")
        return {"system": "ad", "username": username, "enabled": enabled, "changed": changed}

    def enable(self, username: str) -> dict[str, Any]:
        """Clear ACCOUNTDISABLE; ``changed`` False when it was already enabled."""
        return self._set_enabled(username, True)

    def disable(self, username: str) -> dict[str, Any]:
        """Set ACCOUNTDISABLE; ``changed`` False when it was already disabled."""
        return self._set_enabled(username, False)

    def _set_member(self, username: str, group: str, member: bool) -> dict[str, Any]:
        from ldap3 import MODIFY_ADD, MODIFY_DELETE

        group_dn = self._group_dn(group)
        user_dn = self._require_user(username)["dn"]
        changed = (group in self.groups_of(username)) != member
        if changed:
            operation, done = (MODIFY_ADD, ATTRIBUTE_OR_VALUE_EXISTS) if member else (MODIFY_DELETE, NO_SUCH_ATTRIBUTE)
            self._modify(group_dn, {self.attrs.group_member: [(operation, [user_dn])]}, done_codes=(done,))
            if (group in self.groups_of(username)) != member:
                raise RuntimeError(f"directory account {username!r} is {'still not' if member else 'still'} "
                                   f"in {group!r} after the change")
        return {"system": "ad", "username": username, "group": group, "member": member, "changed": changed}

    def add_to_group(self, username: str, group: str) -> dict[str, Any]:
        """Make the account a member of ``group`` (no change when it is one)."""
        return self._set_member(username, group, True)

    def remove_from_group(self, username: str, group: str) -> dict[str, Any]:
        """Take the account out of ``group`` (no change when it is not in it)."""
        return self._set_member(username, group, False)

    # --- Airflow UI --------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        try:
            found = next(self.paged_search(self.conn_params["users_dn"], self.mapping.user_filter,
                                           [self.attrs.username]), None)
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Bound as {self.conn_params['bind_dn']}; {'found' if found else 'no'} accounts"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema"],
            "relabeling": {"login": "Bind DN", "password": "Password"},
            "placeholders": {
                "host": "dc01.corp.example.com", "port": "636", "login": "CN=svc-prep,OU=Service,DC=corp,DC=example",
                "extra": '{"base_dn": "DC=corp,DC=example", "users_dn": "", "groups_dn": "", "use_ssl": true, '
                         '"page_size": 500}',
            },
        }


def _first(values: Any, name: str) -> Any:
    """The first value of an attribute (ldap3 gives lists without schema information), or None."""
    value = values.get(name) if values is not None else None
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value

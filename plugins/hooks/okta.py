"""Okta users, groups, group members and app assignments through the Okta Management API.

API reference: https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/,
.../tag/UserLifecycle/, .../tag/Group/, .../tag/ApplicationUsers/; pagination:
https://developer.okta.com/docs/api/#pagination; rate limits:
https://developer.okta.com/docs/reference/rl-best-practices/.

The Connection (``http``): host = the org URL (``acme.okta.com``), schema (https by default),
extra ``base_path`` (the sandbox serves the API under ``/okta``) and ``timeout``, and one of:

- an OAuth 2.0 service app, which Okta recommends for integrations: extra ``client_id``,
  ``private_key`` (the PEM private key whose public half is registered with the app; Airflow masks
  it), optionally ``key_id`` (the key's ``kid``), ``algorithm`` (default RS256) and ``scopes``
  (default :data:`OAUTH_SCOPES`, each granted to the app). The hook signs a client assertion
  (``private_key_jwt``) and trades it at the org's ``/oauth2/v1/token`` for an access token sent as
  ``Authorization: Bearer``, renewed before it expires
  (https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/);
- password = an API token (sent as ``Authorization: SSWS <token>``).

Listings follow ``Link: rel="next"`` to the last page. Rate limits are respected: when a
response says ``X-Rate-Limit-Remaining: 0`` the next call waits until ``X-Rate-Limit-Reset``;
a 429 (Okta sends no ``Retry-After``) is waited out until that reset too. Lifecycle and group
changes are idempotent: the current state is read first and nothing is sent when it already holds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection
from hooks.http_client import HttpError, send

log = logging.getLogger(__name__)

# Statuses in which the user cannot sign in (https://developer.okta.com/docs/concepts/user-lifecycle/).
DISABLED_STATES = frozenset({"STAGED", "SUSPENDED", "DEPROVISIONED"})
ALL_STATES_SEARCH = " or ".join(f'status eq "{status}"' for status in (
    "STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT", "SUSPENDED", "DEPROVISIONED"))
MAX_RATE_LIMIT_WAIT_S = 120.0
PAGE_SIZE = 200
# What the project reads (snapshots) and changes (revocations, joiners and leavers).
OAUTH_SCOPES = ("okta.users.read", "okta.users.manage", "okta.groups.read", "okta.groups.manage", "okta.apps.read")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 300  # Okta accepts up to an hour; a short one limits what a leaked assertion allows
TOKEN_RENEWAL_S = 60.0  # ask for a new access token this long before the current one expires


def parse_okta_time(value: str | None) -> datetime | None:
    """``2026-11-28T09:00:00.000Z`` as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class OktaHook(BaseHook):
    """Read and change an Okta org's users and group memberships."""

    conn_name_attr = "okta_conn_id"
    default_conn_name = "okta_default"
    conn_type = "http"
    hook_name = "Okta"

    def __init__(self, *, okta_conn_id: str = default_conn_name, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.okta_conn_id = okta_conn_id
        self._sleep, self._clock = sleep, clock
        self._quota: tuple[int, float] | None = None  # (remaining, reset epoch) from the last answer
        self.rate_limit_waits: list[float] = []  # seconds waited for a rate-limit reset (for logs and tests)
        self._token: tuple[str, float] | None = None  # a service app's access token and when it expires

    @cached_property
    def conn_params(self) -> ApiConnection:
        conn = self.get_connection(self.okta_conn_id)
        params = api_connection(conn, "Okta")
        if params.extra.get("client_id"):
            if not params.extra.get("private_key"):
                raise ValueError(f"Connection {self.okta_conn_id!r} names an Okta service app (extra 'client_id') "
                                 "but not its extra 'private_key' (PEM) to sign the client assertion")
        elif not params.password:
            raise ValueError(f"Connection {self.okta_conn_id!r} needs an Okta API token (password) or an OAuth "
                             "service app (extra 'client_id' and 'private_key')")
        return params

    @property
    def service_app(self) -> str | None:
        """The OAuth service app's client id, None when the Connection holds an API token."""
        return self.conn_params.extra.get("client_id") or None

    @cached_property
    def session(self) -> requests.Session:
        authorization = None if self.service_app else f"SSWS {self.conn_params.password}"
        session = self.conn_params.json_session(headers={"Content-Type": "application/json",
                                                         **({"Authorization": authorization} if authorization else {})})
        session.hooks["response"].append(self._note_rate_limit)
        return session

    # --- OAuth 2.0 service app -------------------------------------------------------------------

    def _access_token(self, *, renew: bool = False) -> str:
        """The service app's access token, asked for again shortly before it expires."""
        if renew or self._token is None or self._token[1] - self._clock() < TOKEN_RENEWAL_S:
            self._token = self._request_token()
        return self._token[0]

    def _request_token(self) -> tuple[str, float]:
        """Sign a client assertion with the private key and trade it for an access token."""
        import jwt

        extra, client_id = self.conn_params.extra, self.service_app
        token_url = f"{self.conn_params.base_url}/oauth2/v1/token"
        now = int(self._clock())
        claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now,
                  "exp": now + ASSERTION_LIFETIME_S, "jti": uuid.uuid4().hex}
        scopes = extra.get("scopes") or OAUTH_SCOPES
        try:
            assertion = jwt.encode(claims, extra["private_key"], algorithm=extra.get("algorithm", "RS256"),
                                   headers={"kid": extra["key_id"]} if extra.get("key_id") else None)
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            raise ValueError(f"Connection {self.okta_conn_id!r}: extra 'private_key' cannot sign the client "
                             f"assertion ({type(error).__name__})") from None
        form = {"grant_type": "client_credentials", "scope": scopes if isinstance(scopes, str) else " ".join(scopes),
                "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
        try:
            answer = send(self.conn_params.json_session(), "POST", token_url, data=form,
                          timeout=self.conn_params.timeout, sleep=self._sleep).json()
        except HttpError as error:
            raise HttpError("POST", token_url, error.status,
                            f"Okta refused the service app {client_id} of Connection {self.okta_conn_id!r}: "
                            f"{str(error).partition(': HTTP ')[2] or error}") from error
        return answer["access_token"], now + float(answer.get("expires_in", 3600))

    # --- HTTP -------------------------------------------------------------------------------------

    def _note_rate_limit(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Remember the quota; give a 429 the ``Retry-After`` that Okta expresses as a reset time."""
        remaining, reset = response.headers.get("X-Rate-Limit-Remaining"), response.headers.get("X-Rate-Limit-Reset")
        if reset is None:
            return
        try:
            reset_at = float(reset)
        except ValueError:
            return
        if remaining is not None and remaining.isdigit():
            self._quota = (int(remaining), reset_at)
        if response.status_code == 429 and "Retry-After" not in response.headers:
            wait = self._until(reset_at)
            self.rate_limit_waits.append(wait)
            log.warning("Okta rate limit hit (429); waiting %.1f s for the reset", wait)
            response.headers["Retry-After"] = f"{wait:.3f}"

    def _until(self, reset_at: float) -> float:
        # +0.5 s: the reset is a whole second, and our clock may run a little ahead of Okta's.
        return min(MAX_RATE_LIMIT_WAIT_S, max(0.0, reset_at - self._clock() + 0.5))

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if self._quota is not None and self._quota[0] <= 0:
            wait = self._until(self._quota[1])
            if wait > 0:
                self.rate_limit_waits.append(wait)
                log.info("Okta rate limit exhausted; waiting %.1f s for the reset", wait)
                self._sleep(wait)
            self._quota = None
        for renewed in (False, True):
            if self.service_app:
                self.session.headers["Authorization"] = f"Bearer {self._access_token(renew=renewed)}"
            try:
                return send(self.session, method, url, timeout=self.conn_params.timeout, sleep=self._sleep,
                            max_wait_s=MAX_RATE_LIMIT_WAIT_S, attempts=6, **kwargs)
            except HttpError as error:
                # An access token revoked or expired early: ask for a new one, once.
                if error.status != 401 or not self.service_app or renewed:
                    raise
        raise AssertionError("unreachable")

    def _url(self, path: str) -> str:
        return f"{self.conn_params.base_url}/api/v1/{path}"

    def _pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``Link: rel="next"`` to the end."""
        url: str | None = self._url(path)
        while url is not None:
            response = self._call("GET", url, params=params)
            yield from response.json()
            url, params = response.links.get("next", {}).get("url"), None
            if url is not None and not url.startswith(self.conn_params.base_url + "/"):
                # The token would go wherever the link points: only follow it within the org.
                raise ValueError(f"Okta sent a next page outside {self.conn_params.base_url}: {url}")

    # --- raw listings ------------------------------------------------------------------------------

    def iter_users(self, search: str | None = None) -> Iterator[dict[str, Any]]:
        """Users as Okta returns them. Without ``search`` Okta leaves out DEPROVISIONED users."""
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if search:
            params["search"] = search
        return self._pages("users", params)

    def iter_groups(self) -> Iterator[dict[str, Any]]:
        return self._pages("groups", {"limit": PAGE_SIZE})

    def iter_group_members(self, group_id: str) -> Iterator[dict[str, Any]]:
        return self._pages(f"groups/{group_id}/users", {"limit": PAGE_SIZE})

    def iter_app_assignments(self) -> Iterator[dict[str, Any]]:
        """Each app with the users assigned to it: ``{"app": <app>, "users": [<app user>, ...]}``."""
        for app in self._pages("apps", {"limit": PAGE_SIZE}):
            yield {"app": app, "users": list(self._pages(f"apps/{app['id']}/users", {"limit": PAGE_SIZE}))}

    # --- normalized rows ---------------------------------------------------------------------------

    @staticmethod
    def account_row(user: dict[str, Any]) -> dict[str, Any]:
        profile = user.get("profile") or {}
        login = str(profile.get("login") or "")
        manager = profile.get("manager")
        return {
            "system": "okta",
            "account_id": user["id"],
            "username": login.split("@", 1)[0],
            "email": profile.get("email") or None,
            "display_name": profile.get("displayName") or " ".join(
                filter(None, [profile.get("firstName"), profile.get("lastName")])),
            "enabled": user.get("status") not in DISABLED_STATES,
            "last_login": parse_okta_time(user.get("lastLogin")),
            "employee_id": profile.get("employeeNumber") or None,
            "manager": str(manager).split("@", 1)[0] if manager else None,
        }

    def accounts(self) -> Iterator[dict[str, Any]]:
        """Every user, DEPROVISIONED ones included (a search lists them, a plain listing does not)."""
        for user in self.iter_users(search=ALL_STATES_SEARCH):
            yield self.account_row(user)

    def memberships(self) -> Iterator[dict[str, Any]]:
        """Every (user, group) pair, read through each group's members."""
        for group in self.iter_groups():
            name = group["profile"]["name"]
            for member in self.iter_group_members(group["id"]):
                yield {"system": "okta", "account_id": member["id"], "group": name}

    # --- single users ------------------------------------------------------------------------------

    def find_user(self, login: str) -> dict[str, Any] | None:
        """The user with this login (or id), or None."""
        try:
            return self._call("GET", self._url(f"users/{requests.utils.quote(login, safe='@')}")).json()
        except HttpError as error:
            if error.status == 404:
                return None
            raise

    def create_user(self, *, login: str, email: str, first_name: str, last_name: str, employee_id: str,
                    activate: bool = True, **profile: Any) -> dict[str, Any]:
        """Create the user unless one with this login exists (then it is returned as it is)."""
        existing = self.find_user(login)
        if existing is not None:
            return existing
        body = {"profile": {"login": login, "email": email, "firstName": first_name, "lastName": last_name,
                            "displayName": f"{first_name} {last_name}".strip(), "employeeNumber": employee_id,
                            **profile}}
        try:
            return self._call("POST", self._url("users"), params={"activate": str(activate).lower()},
                              json=body).json()
        except HttpError:
            # A create that failed may have happened (or raced another run): look again before giving up.
            created = self.find_user(login)
            if created is None:
                raise
            return created

    def _lifecycle(self, user_id: str, operation: str, done: Callable[[str], bool]) -> dict[str, Any]:
        user = self._call("GET", self._url(f"users/{user_id}")).json()
        changed = not done(user["status"])
        if changed:
            self._call("POST", self._url(f"users/{user['id']}/lifecycle/{operation}"), params={"sendEmail": "false"})
            user = self._call("GET", self._url(f"users/{user['id']}")).json()
            if not done(user["status"]):
                raise RuntimeError(f"Okta user {user_id} is {user['status']} after {operation}")
        return {"system": "okta", "user_id": user["id"], "status": user["status"], "changed": changed}

    def activate_user(self, user_id: str) -> dict[str, Any]:
        """Activate a STAGED or DEPROVISIONED user; no call when it can already sign in."""
        return self._lifecycle(user_id, "activate", lambda status: status not in DISABLED_STATES)

    def deactivate_user(self, user_id: str) -> dict[str, Any]:
        """Deactivate (DEPROVISIONED); no call when it already is."""
        return self._lifecycle(user_id, "deactivate", lambda status: status == "DEPROVISIONED")

    # --- groups ------------------------------------------------------------------------------------

    def group_ids(self, names: Iterable[str]) -> dict[str, str]:
        """Group name -> id for each name; ValueError naming the groups Okta does not have."""
        wanted = set(names)
        found = {g["profile"]["name"]: g["id"] for g in self.iter_groups() if g["profile"]["name"] in wanted}
        unknown = sorted(wanted - found.keys())
        if unknown:
            raise ValueError(f"Okta has no group named {', '.join(map(repr, unknown))}")
        return found

    def user_group_names(self, user_id: str) -> set[str]:
        return {g["profile"]["name"] for g in self._call("GET", self._url(f"users/{user_id}/groups")).json()}

    def _user_group_ids(self, user_id: str) -> set[str]:
        return {g["id"] for g in self._call("GET", self._url(f"users/{user_id}/groups")).json()}

    def add_to_group(self, user_id: str, group_id: str) -> dict[str, Any]:
        """Add the user to the group (PUT; no call when it is a member); verified by reading back."""
        return self._set_member(user_id, group_id, True)

    def remove_from_group(self, user_id: str, group_id: str) -> dict[str, Any]:
        """Take the user out of the group (DELETE; no call when it is not a member); verified."""
        return self._set_member(user_id, group_id, False)

    def _set_member(self, user_id: str, group_id: str, member: bool) -> dict[str, Any]:
        changed = (group_id in self._user_group_ids(user_id)) != member
        if changed:
            self._call("PUT" if member else "DELETE", self._url(f"groups/{group_id}/users/{user_id}"))
            if (group_id in self._user_group_ids(user_id)) != member:
                raise RuntimeError(f"Okta user {user_id} is {'still not' if member else 'still'} in group {group_id}")
        return {"system": "okta", "user_id": user_id, "group_id": group_id, "member": member, "changed": changed}

    # --- Airflow UI --------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", self._url("users"), params={"limit": 1})
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        who = f" as service app {self.service_app}" if self.service_app else ""
        return True, f"Listed users at {self.conn_params.base_url}{who}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"host": "Org URL", "password": "API token (or leave empty for a service app)"},
            "placeholders": {"host": "acme.okta.com", "schema": "https",
                             "extra": '{"client_id": "0oa...", "private_key": "-----BEGIN PRIVATE KEY-----...", '
                                      '"key_id": "...", "timeout": 30}'},
        }

"""Okta Management API stand-in: users, their life cycle, groups, group members, apps and app users.

Under ``/okta`` (the Connection's host is ``http://HOST:PORT`` with extra ``base_path`` ``/okta``),
authenticated with ``Authorization: SSWS <API token>``, or ``Bearer <access token>`` of an OAuth 2.0
service app holding the call's scope (:mod:`sandbox.okta_oauth`, ``POST /okta/oauth2/v1/token``).
Shapes and behaviour follow Okta's Management API reference (``tests/specs/okta_management_openapi.yaml``,
https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/,
.../tag/UserLifecycle/, .../tag/Group/, .../tag/ApplicationUsers/):

- ``GET /api/v1/users`` (``limit`` max 200, ``after`` cursor, ``search`` with ``eq``/``sw``
  terms joined by ``and`` or ``or``). As in Okta, a listing without ``search`` omits
  ``DEPROVISIONED`` users. ``GET /api/v1/users/{id or login}``, ``POST /api/v1/users?activate=``
  (400 E0000001 when the login exists), ``GET /api/v1/users/{id}/groups``.
- ``POST /api/v1/users/{id}/lifecycle/activate`` (only STAGED or DEPROVISIONED users) and
  ``.../deactivate`` (not DEPROVISIONED ones); otherwise 403 E0000038. A user without a password
  becomes PROVISIONED on activation, as in Okta. Deactivation keeps group memberships (Okta
  does) but ends app assignments.
- ``GET /api/v1/groups`` (``q`` name prefix), ``GET /api/v1/groups/{id}``,
  ``GET /api/v1/groups/{id}/users``, ``PUT``/``DELETE /api/v1/groups/{id}/users/{userId}`` (204).
- ``GET /api/v1/apps``, ``GET /api/v1/apps/{id}/users`` (assignments through groups, scope GROUP).
- Pagination: ``Link: <...>; rel="self"`` and ``rel="next"`` headers with an ``after`` cursor
  (https://developer.okta.com/docs/api/#pagination).
- Rate limits: every answer carries ``X-Rate-Limit-Limit``, ``-Remaining`` and ``-Reset`` (epoch
  seconds); past the limit, 429 E0000047 until the reset
  (https://developer.okta.com/docs/reference/rl-best-practices/). Errors use Okta's shape
  ``{errorCode, errorSummary, errorLink, errorId, errorCauses}``
  (https://developer.okta.com/docs/reference/error-codes/).

For tests: ``GET /okta/_sandbox/state`` (users with their group names), ``POST /okta/_sandbox/reset``
(the seed of :mod:`sandbox.directory_seed` again), ``PUT /okta/_sandbox/rate_limit``
``{"limit", "window_s", "announce"}`` (``announce: false`` hides the remaining count, so only a
429 tells the client). Faults (``/sandbox/faults/okta``) apply to ``/okta/api/``.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from sandbox import directory_seed as seed
from sandbox import okta_oauth

PREFIX = "/okta"
API_PREFIX = "/okta/api/"
SANDBOX_TOKEN = "sandbox-okta-api-token"
ACTIVE_STATES = ("ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT")
SEARCH_TERM = re.compile(r'^\(?\s*([A-Za-z_][A-Za-z0-9_.]*)\s+(eq|sw)\s+"((?:[^"\\]|\\.)*)"\s*\)?$', re.IGNORECASE)


class OktaError(Exception):
    """An error answered in Okta's shape."""

    def __init__(self, status: int, code: str, summary: str, causes: list[str] | None = None) -> None:
        super().__init__(summary)
        self.status, self.code, self.summary, self.causes = status, code, summary, causes or []
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"errorCode": self.code, "errorSummary": self.summary, "errorLink": self.code,
                "errorId": "oae" + secrets.token_hex(10), "errorCauses": [{"errorSummary": c} for c in self.causes]}


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault, in Okta's error shape."""
    if status == 429:
        return OktaError(429, "E0000047", "API call exceeded rate limit due to too many requests.").body()
    return OktaError(status, "E0000009", "Internal Server Error").body()


def stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class OktaUser:
    id: str
    status: str
    profile: dict[str, Any]
    created: datetime
    last_login: datetime | None = None
    has_password: bool = True
    status_changed: datetime | None = None
    last_updated: datetime | None = None


@dataclass
class OktaGroup:
    id: str
    name: str
    description: str
    members: dict[str, None] = field(default_factory=dict)  # user ids, in the order added


@dataclass
class RateLimit:
    """One org-wide bucket: ``limit`` calls per ``window_s`` seconds."""

    limit: int = 600
    window_s: float = 60.0
    announce: bool = True
    window_end: float = 0.0
    used: int = 0

    def take(self, now: float) -> tuple[bool, dict[str, str]]:
        if now >= self.window_end:
            self.window_end, self.used = now + self.window_s, 0
        allowed = self.used < self.limit
        if allowed:
            self.used += 1
        headers = {"X-Rate-Limit-Limit": str(self.limit), "X-Rate-Limit-Reset": str(math.ceil(self.window_end))}
        if self.announce:
            headers["X-Rate-Limit-Remaining"] = str(self.limit - self.used)
        return allowed, headers


class RateLimitPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=600, ge=1)
    window_s: float = Field(default=60.0, gt=0, le=3600)
    announce: bool = True


class OktaOrg:
    """The sandbox org's users, groups and apps."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rate_limit = RateLimit()
        self.service_apps = okta_oauth.ServiceApps()
        self.reset()

    def reset(self) -> None:
        created = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
        self.users: dict[str, OktaUser] = {}
        self.groups: dict[str, OktaGroup] = {
            seed.okta_id("00g", name): OktaGroup(seed.okta_id("00g", name), name, f"Seeded group {name}")
            for name in seed.OKTA_GROUPS
        }
        by_name = {group.name: group for group in self.groups.values()}
        for account in seed.accounts("okta"):
            login = account.email or f"{account.username}@{seed.DOMAIN}"
            first, _, last = account.display_name.rpartition(" ")
            profile = {"login": login, "email": login, "firstName": first or account.display_name,
                       "lastName": last, "displayName": account.display_name}
            person = seed.PEOPLE_BY_ID.get(account.employee_id or "")
            if account.employee_id:
                profile["employeeNumber"] = account.employee_id
            if person is not None:
                profile["department"] = person.department
            if account.manager:
                profile["manager"] = account.manager
                profile["managerId"] = seed.okta_id("00u", f"{account.manager}@{seed.DOMAIN}")
            user = OktaUser(id=seed.okta_id("00u", login), status="ACTIVE" if account.enabled else "DEPROVISIONED",
                            profile=profile, created=created, last_login=account.last_login,
                            status_changed=created, last_updated=created)
            self.users[user.id] = user
            for group in account.groups:
                by_name[group].members[user.id] = None
        self.apps = [
            {"id": seed.okta_id("0oa", app["name"]), "name": app["name"], "label": app["label"],
             "groups": [by_name[g].id for g in app["groups"]]}
            for app in seed.OKTA_APPS
        ]

    def user(self, id_or_login: str) -> OktaUser:
        found = self.users.get(id_or_login) or next(
            (u for u in self.users.values() if u.profile["login"].lower() == id_or_login.lower()), None)
        if found is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {id_or_login} (User)")
        return found

    def group(self, group_id: str) -> OktaGroup:
        found = self.groups.get(group_id)
        if found is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {group_id} (UserGroup)")
        return found

    def app(self, app_id: str) -> dict[str, Any]:
        found = next((app for app in self.apps if app["id"] == app_id), None)
        if found is None:
            raise OktaError(404, "E0000007", f"Not found: Resource not found: {app_id} (AppInstance)")
        return found

    def groups_of(self, user_id: str) -> list[OktaGroup]:
        return [group for group in self.groups.values() if user_id in group.members]


def user_json(base: str, user: OktaUser) -> dict[str, Any]:
    return {
        "id": user.id, "status": user.status, "created": stamp(user.created),
        "activated": stamp(user.created) if user.status != "STAGED" else None,
        "statusChanged": stamp(user.status_changed), "lastLogin": stamp(user.last_login),
        "lastUpdated": stamp(user.last_updated), "passwordChanged": stamp(user.created) if user.has_password else None,
        "type": {"id": "oty" + "0" * 17}, "profile": dict(user.profile),
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"{base}/api/v1/users/{user.id}"}},
    }


def group_json(base: str, group: OktaGroup) -> dict[str, Any]:
    created = stamp(datetime(2024, 1, 8, 9, 0, tzinfo=UTC))
    return {
        "id": group.id, "created": created, "lastUpdated": created, "lastMembershipUpdated": created,
        "objectClass": ["okta:user_group"], "type": "OKTA_GROUP",
        "profile": {"name": group.name, "description": group.description},
        "_links": {"users": {"href": f"{base}/api/v1/groups/{group.id}/users"},
                   "apps": {"href": f"{base}/api/v1/groups/{group.id}/apps"}},
    }


def matches(user: OktaUser, search: str) -> bool:
    """Okta's ``search`` expression, the subset ``path eq|sw "value"`` joined by ``and`` or ``or``."""
    joiner = " or " if re.search(r"\s+or\s+", search, re.IGNORECASE) else " and "
    terms = re.split(rf"\s+{joiner.strip()}\s+", search.strip(), flags=re.IGNORECASE)
    results = []
    for term in terms:
        parsed = SEARCH_TERM.match(term.strip())
        if parsed is None:
            raise OktaError(400, "E0000031", "Invalid search criteria.", [f"Unsupported search term: {term}"])
        path, operator, wanted = parsed.group(1), parsed.group(2).lower(), parsed.group(3).replace('\\"', '"')
        if path.startswith("profile."):
            value = user.profile.get(path.removeprefix("profile."))
        elif path in ("id", "status"):
            value = getattr(user, path)
        else:
            raise OktaError(400, "E0000031", "Invalid search criteria.", [f"Unsupported property: {path}"])
        value = "" if value is None else str(value).lower()
        results.append(value == wanted.lower() if operator == "eq" else value.startswith(wanted.lower()))
    return any(results) if joiner == " or " else all(results)


class OktaRoute(APIRoute):
    """SSWS authentication, the rate limit and its headers, and errors in Okta's shape, for every route."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def answer_like_okta(request: Request) -> Response:
            org = get_org(request)
            with org.lock:
                allowed, headers = org.rate_limit.take(time.time())
            try:
                if not allowed:
                    raise OktaError(429, "E0000047", "API call exceeded rate limit due to too many requests.")
                authorize(org, request)
                response = await handler(request)
            except OktaError as error:
                response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
            response.headers.update(headers)
            return response

        return answer_like_okta


def authorize(org: OktaOrg, request: Request) -> None:
    """An API token (``SSWS``), or a service app's access token (``Bearer``) holding the call's scope."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme == "SSWS" and secrets.compare_digest(token, SANDBOX_TOKEN):
        return
    scopes = org.service_apps.scopes_of(token, time.time()) if scheme == "Bearer" else None
    if scopes is None:
        raise OktaError(401, "E0000011", "Invalid token provided")
    needed = okta_oauth.required_scope(request.method, request.url.path.removeprefix(f"{PREFIX}/api/v1"))
    if not okta_oauth.allows(scopes, needed):
        error = OktaError(403, "E0000006", "You do not have permission to perform the requested action")
        error.headers = {"WWW-Authenticate": f'Bearer authorization_uri="{request.base_url}okta/oauth2/v1/authorize", '
                                             f'realm="{request.base_url}okta", scope="{needed}", '
                                             'error="insufficient_scope", error_description="The access token '
                                             'provided does not contain the required scopes."'}
        raise error


def get_org(request: Request) -> OktaOrg:
    return request.app.state.okta


def base_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}"


def page(request: Request, items: list[Any], key: Callable[[Any], str], render: Callable[[Any], Any],
         default_limit: int, max_limit: int, extra: dict[str, str] | None = None) -> JSONResponse:
    """One page of ``items`` after the ``after`` cursor, with Okta's Link headers."""
    try:
        limit = min(max(int(request.query_params.get("limit") or default_limit), 1), max_limit)
    except ValueError:
        raise OktaError(400, "E0000001", "Api validation failed: limit", ["limit: must be a number"]) from None
    after = request.query_params.get("after")
    start = 0
    if after:
        keys = [key(item) for item in items]
        start = keys.index(after) + 1 if after in keys else len(items)
    chunk = items[start:start + limit]
    url = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    query = {**(extra or {}), "limit": str(limit)}
    links = [f'<{url}?{urlencode({**query, **({"after": after} if after else {})})}>; rel="self"']
    if start + limit < len(items) and chunk:
        links.append(f'<{url}?{urlencode({**query, "after": key(chunk[-1])})}>; rel="next"')
    return JSONResponse([render(item) for item in chunk], headers={"Link": ", ".join(links)})


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise OktaError(400, "E0000003", "The request body was not well-formed.") from None
    if not isinstance(body, dict):
        raise OktaError(400, "E0000003", "The request body was not well-formed.")
    return body


api = APIRouter(route_class=OktaRoute)


@api.get("/users")
async def list_users(request: Request) -> Response:
    org, base = get_org(request), base_url(request)
    search = request.query_params.get("search")
    with org.lock:
        users = list(org.users.values())
        if search:
            users = [u for u in users if matches(u, search)]
        else:
            users = [u for u in users if u.status != "DEPROVISIONED"]
    return page(request, users, lambda u: u.id, lambda u: user_json(base, u), 200, 200,
                {"search": search} if search else None)


@api.post("/users")
async def create_user(request: Request) -> Response:
    org, body = get_org(request), await json_body(request)
    profile = body.get("profile")
    if not isinstance(profile, dict):
        raise OktaError(400, "E0000001", "Api validation failed: profile", ["profile: The field cannot be left blank"])
    missing = [name for name in ("login", "email", "firstName", "lastName") if not profile.get(name)]
    if missing:
        raise OktaError(400, "E0000001", f"Api validation failed: {missing[0]}",
                        [f"{name}: The field cannot be left blank" for name in missing])
    activate = request.query_params.get("activate", "true").lower() != "false"
    has_password = bool((body.get("credentials") or {}).get("password"))
    now = datetime.now(UTC)
    with org.lock:
        if any(u.profile["login"].lower() == str(profile["login"]).lower() for u in org.users.values()):
            raise OktaError(400, "E0000001", "Api validation failed: login",
                            ["login: An object with this field already exists in the current organization"])
        user = OktaUser(id="00u" + secrets.token_hex(9)[:17], profile={k: v for k, v in profile.items()},
                        status=("ACTIVE" if has_password else "PROVISIONED") if activate else "STAGED",
                        created=now, has_password=has_password, status_changed=now, last_updated=now)
        org.users[user.id] = user
    return JSONResponse(user_json(base_url(request), user), status_code=200)


@api.get("/users/{ident}")
async def get_user(ident: str, request: Request) -> Response:
    org = get_org(request)
    with org.lock:
        return JSONResponse(user_json(base_url(request), org.user(ident)))


@api.get("/users/{ident}/groups")
async def user_groups(ident: str, request: Request) -> Response:
    org, base = get_org(request), base_url(request)
    with org.lock:
        return JSONResponse([group_json(base, g) for g in org.groups_of(org.user(ident).id)])


@api.post("/users/{ident}/lifecycle/{operation}")
async def lifecycle(ident: str, operation: str, request: Request) -> Response:
    org = get_org(request)
    with org.lock:
        user = org.user(ident)
        if operation == "activate":
            if user.status not in ("STAGED", "DEPROVISIONED"):
                raise OktaError(403, "E0000038", "This operation is not allowed in the user's current status.")
            user.status = "ACTIVE" if user.has_password else "PROVISIONED"
        elif operation == "deactivate":
            if user.status == "DEPROVISIONED":
                raise OktaError(403, "E0000038", "This operation is not allowed in the user's current status.")
            user.status = "DEPROVISIONED"
        else:
            raise OktaError(404, "E0000022", f"The endpoint does not support the provided HTTP method ({operation})")
        user.status_changed = user.last_updated = datetime.now(UTC)
    if operation == "activate":
        return JSONResponse({"activationUrl": f"{base_url(request)}/welcome/{user.id}", "activationToken": "sandbox"})
    return JSONResponse({})


@api.get("/groups")
async def list_groups(request: Request) -> Response:
    org, base = get_org(request), base_url(request)
    prefix = (request.query_params.get("q") or "").lower()
    with org.lock:
        groups = [g for g in org.groups.values() if g.name.lower().startswith(prefix)]
    return page(request, groups, lambda g: g.id, lambda g: group_json(base, g), 10000, 10000,
                {"q": prefix} if prefix else None)


@api.get("/groups/{group_id}")
async def get_group(group_id: str, request: Request) -> Response:
    org = get_org(request)
    with org.lock:
        return JSONResponse(group_json(base_url(request), org.group(group_id)))


@api.get("/groups/{group_id}/users")
async def group_users(group_id: str, request: Request) -> Response:
    org, base = get_org(request), base_url(request)
    with org.lock:
        users = [org.users[user_id] for user_id in org.group(group_id).members]
    return page(request, users, lambda u: u.id, lambda u: user_json(base, u), 1000, 1000)


@api.put("/groups/{group_id}/users/{user_id}")
async def add_group_member(group_id: str, user_id: str, request: Request) -> Response:
    org = get_org(request)
    with org.lock:
        group, user = org.group(group_id), org.user(user_id)
        group.members[user.id] = None
    return Response(status_code=204)


@api.delete("/groups/{group_id}/users/{user_id}")
async def remove_group_member(group_id: str, user_id: str, request: Request) -> Response:
    org = get_org(request)
    with org.lock:
        group, user = org.group(group_id), org.user(user_id)
        group.members.pop(user.id, None)
    return Response(status_code=204)


@api.get("/apps")
async def list_apps(request: Request) -> Response:
    org, base = get_org(request), base_url(request)

    def render(app: dict[str, Any]) -> dict[str, Any]:
        return {"id": app["id"], "name": app["name"], "label": app["label"], "status": "ACTIVE",
                "signOnMode": "SAML_2_0", "created": stamp(datetime(2024, 1, 8, tzinfo=UTC)),
                "_links": {"users": {"href": f"{base}/api/v1/apps/{app['id']}/users"},
                           "groups": {"href": f"{base}/api/v1/apps/{app['id']}/groups"}}}

    return page(request, list(org.apps), lambda a: a["id"], render, 20, 200)


@api.get("/apps/{app_id}/users")
async def app_users(app_id: str, request: Request) -> Response:
    org, base = get_org(request), base_url(request)
    with org.lock:
        app = org.app(app_id)
        assigned: dict[str, OktaUser] = {}
        for group_id in app["groups"]:
            for user_id in org.groups[group_id].members:
                if org.users[user_id].status != "DEPROVISIONED":
                    assigned.setdefault(user_id, org.users[user_id])

    def render(user: OktaUser) -> dict[str, Any]:
        return {"id": user.id, "externalId": None, "created": stamp(user.created), "lastUpdated": stamp(user.created),
                "scope": "GROUP", "status": "ACTIVE", "syncState": "DISABLED",
                "credentials": {"userName": user.profile["login"]}, "profile": {},
                "_links": {"app": {"href": f"{base}/api/v1/apps/{app_id}"},
                           "user": {"href": f"{base}/api/v1/users/{user.id}"}}}

    return page(request, list(assigned.values()), lambda u: u.id, render, 50, 500)


router = APIRouter(prefix=PREFIX, tags=["okta"])
router.include_router(api, prefix="/api/v1")
router.include_router(okta_oauth.router)


@router.get("/_sandbox/state")
async def sandbox_state(request: Request) -> dict[str, Any]:
    """Every user with status, login and group names (what tests read back)."""
    org = get_org(request)
    with org.lock:
        return {"users": [{"id": u.id, "login": u.profile["login"], "status": u.status,
                           "employeeNumber": u.profile.get("employeeNumber"),
                           "groups": sorted(g.name for g in org.groups_of(u.id))} for u in org.users.values()],
                "service_app_tokens": {app: sum(1 for issued in org.service_apps.tokens.values() if issued[0] == app)
                                       for app in org.service_apps.apps}}


@router.post("/_sandbox/reset")
async def sandbox_reset(request: Request) -> dict[str, Any]:
    """The seeded population again, and the default rate limit."""
    org = get_org(request)
    with org.lock:
        org.reset()
        org.rate_limit = RateLimit()
    return {"users": len(org.users), "groups": len(org.groups)}


@router.put("/_sandbox/rate_limit")
async def set_rate_limit(plan: RateLimitPlan, request: Request) -> dict[str, Any]:
    """Replace the org's rate limit (a new window starts with the next call)."""
    org = get_org(request)
    with org.lock:
        org.rate_limit = RateLimit(limit=plan.limit, window_s=plan.window_s, announce=plan.announce)
    return plan.model_dump()

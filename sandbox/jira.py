"""Jira REST API v2 stand-in, shaped for atlassian-python-api's ``Jira`` client (what ``JiraHook`` builds).

Under ``/jira`` (the Connection's host is ``http://HOST:PORT/jira``), with HTTP Basic auth on
every call but ``serverInfo``; ``/rest/api/latest/...`` answers like ``/rest/api/2/...``:

- ``GET serverInfo``, ``GET myself``, ``GET project``, ``GET project/{key}``
- ``POST issue`` (201 ``{"id", "key", "self"}``; 400 with ``errors`` per field), ``GET``/``PUT issue/{key}``
- ``GET``/``POST issue/{key}/comment``, ``GET``/``POST issue/{key}/transitions`` (204)
- ``POST issue/{key}/attachments`` (multipart ``file``, needs ``X-Atlassian-Token: no-check``)
- ``GET``/``POST search`` (``startAt``/``maxResults``/``total``; what ``Jira.jql()`` calls for a
  Server/Data Center client) and ``GET``/``POST search/jql`` (``nextPageToken``, ``isLast``, no
  ``total``, ``reconcileIssues``; Jira Cloud's replacement), with the JQL subset of :mod:`sandbox.jira_jql`
- ``POST issueLink`` (201, no body), ``GET``/``DELETE issueLink/{id}``, ``GET issueLinkType``; an
  issue's links show in ``fields.issuelinks`` (see :mod:`sandbox.jira_site` for which side is which)
- ``GET /jira/secure/attachment/{id}/{filename}``: an attachment's bytes (its ``content`` link)

References: https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-search/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-comments/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-attachments/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-myself/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-server-info/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-projects/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-links/,
https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-link-types/ and, for the
error shape and status codes, https://developer.atlassian.com/cloud/jira/platform/rest/v2/intro/.

The site is a Server/Data Center one (``serverInfo.deploymentType: Server``) until
``PUT /jira/_sandbox/deployment`` ``{"deploymentType": "Cloud"}`` makes it behave as Jira Cloud does
since CHANGE-2046 (https://developer.atlassian.com/changelog/#CHANGE-2046): ``GET``/``POST
/rest/api/{2,3}/search`` answer ``410 Gone``, and ``search/jql`` does not see an issue for
``index_lag_s`` (default 1 s) after it is created unless ``reconcileIssues`` names its id.
``{"deploymentType": "Server"}`` restores today's behaviour.

``GET /jira/_sandbox/issues`` shows every issue with its fields, comments, attachments, links and
transition history; ``DELETE`` clears them. ``POST /jira/_sandbox/seed/how-to`` adds a few resolved
tickets labelled ``how-to`` (the "How do I?" knowledge base's source) unless they are there.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from sandbox import jira_jql
from sandbox.jira_site import (
    CATEGORIES,
    ISSUE_TYPES,
    LINK_TYPES,
    NO_ISSUE,
    PRIORITIES,
    PROJECTS,
    RESOLUTIONS,
    STATUSES,
    USER,
    Issue,
    IssueLink,
    JiraError,
    JiraSite,
    timestamp,
)  # fmt: skip

PREFIX = "/jira"
API_PREFIX = "/jira/rest/"
SANDBOX_USER, SANDBOX_PASSWORD = "prep-support", "sandbox-jira-token"  # the sandbox Connection's login
CREDENTIALS = {SANDBOX_USER: SANDBOX_PASSWORD}
DEFAULT_MAX_RESULTS, MAX_RESULTS = 50, 100  # Jira Cloud caps a page at 100 issues
EXPANDABLE = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


class JiraResponse(JSONResponse):
    """JSON with the content type Jira sends (atlassian-python-api checks it on 401)."""

    media_type = "application/json;charset=UTF-8"


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected HTTP error, in Jira's shape."""
    messages = {429: "Rate limit exceeded.", 503: "Service Unavailable"}
    return {"errorMessages": [messages.get(status, "Internal server error")], "errors": {}}


class JiraRoute(APIRoute):
    """Answer :class:`JiraError` and bad parameters in Jira's error shape instead of FastAPI's."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def answer_errors_like_jira(request: Request) -> Response:
            try:
                return await handler(request)
            except JiraError as error:
                headers = {"WWW-Authenticate": 'Basic realm="protected-area"'} if error.status == 401 else None
                return JiraResponse(error.body(), status_code=error.status, headers=headers)
            except RequestValidationError as error:
                fields = {".".join(map(str, e["loc"][1:])): e["msg"] for e in error.errors()}
                return JiraResponse({"errorMessages": [], "errors": fields}, status_code=400)

        return answer_errors_like_jira


def get_site(request: Request) -> JiraSite:
    """The Jira site of the app serving this request."""
    return request.app.state.jira


def authenticate(request: Request) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        login, password = "", ""
    expected = CREDENTIALS.get(login)
    if scheme.lower() != "basic" or expected is None or not secrets.compare_digest(password, expected):
        raise JiraError(401, ["You are not authenticated. Authentication required to perform this operation."])


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise JiraError(400, ["Unexpected character in the request body: it is not valid JSON."]) from None


class Links:
    """``self`` links and the shared objects of one answer, relative to the site's base URL."""

    def __init__(self, request: Request) -> None:
        self.base = f"{str(request.base_url).rstrip('/')}{PREFIX}"
        self.api = f"{self.base}/rest/api/2"

    def user(self) -> dict[str, Any]:
        """A user as an issue, comment or attachment shows it (UserDetails: no ``locale``)."""
        return {"self": f"{self.api}/user?username={USER['name']}", **USER, "active": True, "timeZone": "UTC"}

    def project(self, key: str) -> dict[str, Any]:
        ident, name = PROJECTS[key]
        return {"self": f"{self.api}/project/{ident}", "id": ident, "key": key, "name": name,
                "projectTypeKey": "software", "simplified": False}

    def status(self, name: str) -> dict[str, Any]:
        ident, category = STATUSES[name]
        category_id, category_name, colour = CATEGORIES[category]
        return {"self": f"{self.api}/status/{ident}", "description": "", "name": name, "id": ident,
                "statusCategory": {"self": f"{self.api}/statuscategory/{category_id}", "id": category_id,
                                   "key": category, "colorName": colour, "name": category_name}}

    def issuetype(self, name: str) -> dict[str, Any]:
        ident, subtask = ISSUE_TYPES[name]
        return {"self": f"{self.api}/issuetype/{ident}", "id": ident, "description": "", "name": name,
                "subtask": subtask, "hierarchyLevel": -1 if subtask else 0}

    def named(self, kind: str, table: dict[str, str], name: str | None) -> dict[str, Any] | None:
        return None if name is None else {"self": f"{self.api}/{kind}/{table[name]}", "id": table[name],
                                          "name": name}

    def comment(self, issue: Issue, comment: dict[str, Any]) -> dict[str, Any]:
        return {"self": f"{self.api}/issue/{issue.id}/comment/{comment['id']}", "id": comment["id"],
                "author": self.user(), "body": comment["body"], "updateAuthor": self.user(),
                "created": comment["created"], "updated": comment["updated"]}

    def comments(self, issue: Issue) -> dict[str, Any]:
        total = len(issue.comments)
        return {"comments": [self.comment(issue, c) for c in issue.comments], "maxResults": total, "total": total,
                "startAt": 0}

    def attachment(self, attachment: dict[str, Any]) -> dict[str, Any]:
        ident = attachment["id"]
        return {"self": f"{self.api}/attachment/{ident}", **attachment, "author": self.user(),
                "content": f"{self.base}/secure/attachment/{ident}/{quote(attachment['filename'])}"}

    def link_type(self, name: str) -> dict[str, Any]:
        ident, inward, outward = LINK_TYPES[name]
        return {"id": ident, "name": name, "inward": inward, "outward": outward,
                "self": f"{self.api}/issueLinkType/{ident}"}

    def issue_link(self, site: JiraSite, link: IssueLink, seen_from: Issue | None = None) -> dict[str, Any]:
        """A link as ``GET issueLink/{id}`` shows it, or as one entry of ``seen_from``'s ``issuelinks``."""
        shown: dict[str, Any] = {"id": link.id, "self": f"{self.api}/issueLink/{link.id}",
                                 "type": self.link_type(link.type)}
        if seen_from is None or seen_from.key != link.outward:
            shown["outwardIssue"] = self.brief(site.issues[link.outward])
        if seen_from is None or seen_from.key != link.inward:
            shown["inwardIssue"] = self.brief(site.issues[link.inward])
        return shown

    def brief(self, issue: Issue) -> dict[str, Any]:
        """An issue as a parent or sub-task reference."""
        return {"id": issue.id, "key": issue.key, "self": f"{self.api}/issue/{issue.id}",
                "fields": {"summary": issue.fields["summary"], "status": self.status(issue.status),
                           "priority": self.named("priority", PRIORITIES, issue.fields["priority"]),
                           "issuetype": self.issuetype(issue.issuetype)}}

    def issue(self, site: JiraSite, issue: Issue, fields: Any = None, expand: str | None = None) -> dict[str, Any]:
        everything = {
            **issue.fields,
            "project": self.project(issue.project),
            "issuetype": self.issuetype(issue.issuetype),
            "status": self.status(issue.status),
            "priority": self.named("priority", PRIORITIES, issue.fields["priority"]),
            "resolution": self.named("resolution", RESOLUTIONS, issue.resolution),
            "resolutiondate": timestamp(issue.resolved) if issue.resolved else None,
            "created": timestamp(issue.created),
            "updated": timestamp(issue.updated),
            "reporter": self.user(),
            "creator": self.user(),
            "assignee": issue.fields.get("assignee"),
            "comment": self.comments(issue),
            "attachment": [self.attachment(a) for a in issue.attachments],
            "subtasks": [self.brief(i) for i in site.issues.values() if i.parent == issue.key],
            "issuelinks": [self.issue_link(site, link, issue) for link in site.links_of(issue)],
        }
        if issue.parent:
            everything["parent"] = self.brief(site.issues[issue.parent])
        shown = {"expand": EXPANDABLE, "id": issue.id, "self": f"{self.api}/issue/{issue.id}", "key": issue.key,
                 "fields": _select(everything, fields)}
        if expand and "changelog" in expand:
            shown["changelog"] = self.changelog(issue)
        return shown

    def changelog(self, issue: Issue) -> dict[str, Any]:
        histories = [{"id": step["id"], "author": self.user(), "created": step["at"],
                      "items": [{"field": "status", "fieldtype": "jira", "from": STATUSES[step["from"]][0],
                                 "fromString": step["from"], "to": STATUSES[step["to"]][0], "toString": step["to"]}]}
                     for step in issue.transitions]
        return {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}


def _select(everything: dict[str, Any], fields: Any) -> dict[str, Any]:
    """The ``fields`` parameter: ``*all``, ``*navigable``, ``*none`` or names, ``-name`` excludes."""
    if fields is None:
        return dict(everything)
    names = [n.strip() for n in (fields if isinstance(fields, list) else str(fields).split(",")) if n.strip()]
    if not names or {"*all", "*navigable"} & set(names):
        chosen = dict(everything)
    else:
        chosen = {name: everything[name] for name in names if name in everything}
    for name in names:
        if name.startswith("-"):
            chosen.pop(name[1:], None)
    return chosen


def _page_size(value: Any) -> int:
    try:
        size = DEFAULT_MAX_RESULTS if value in (None, "") else int(value)
    except (TypeError, ValueError):
        raise JiraError(400, errors={"maxResults": f"'{value}' is not a number."}) from None
    return min(max(size, 0), MAX_RESULTS)


async def _search_arguments(request: Request) -> dict[str, Any]:
    """Search parameters from the query string (GET) or the JSON body (POST)."""
    if request.method == "POST":
        body = await json_body(request)
        return body if isinstance(body, dict) else {}
    return dict(request.query_params)


api = APIRouter(route_class=JiraRoute)
api_v3 = APIRouter(route_class=JiraRoute)  # only what the sandbox needs of v3: the retired search


@api.get("/serverInfo")
async def server_info(request: Request) -> dict[str, Any]:
    """Server version and time; readable without logging in, as on Jira."""
    if get_site(request).cloud:  # Jira Cloud's shape (ServerInformation in the v3 spec)
        return {"baseUrl": Links(request).base, "version": "1001.0.0-SNAPSHOT", "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud", "buildNumber": 100295, "buildDate": "2026-11-30T00:00:00.000+0000",
                "serverTime": timestamp(datetime.now(UTC)), "scmInfo": "sandbox", "serverTitle": "Jira",
                "serverTimeZone": "Etc/UTC"}
    return {"baseUrl": Links(request).base, "version": "9.12.2", "versionNumbers": [9, 12, 2],
            "deploymentType": "Server", "buildNumber": 9120002, "buildDate": "2024-01-01T00:00:00.000+0000",
            "serverTime": timestamp(datetime.now(UTC)), "scmInfo": "sandbox", "serverTitle": "Prep Support sandbox"}


@api.get("/myself")
async def myself(request: Request) -> dict[str, Any]:
    authenticate(request)
    return Links(request).user() | {"locale": "en_US", "groups": {"size": 1, "items": []},
                                    "applicationRoles": {"size": 1, "items": []}}


@api.get("/project")
async def list_projects(request: Request) -> list[dict[str, Any]]:
    authenticate(request)
    links = Links(request)
    return [links.project(key) for key in PROJECTS]


@api.get("/project/{ref}")
async def get_project(ref: str, request: Request) -> dict[str, Any]:
    authenticate(request)
    for key, (ident, _name) in PROJECTS.items():
        if ref.upper() == key or ref == ident:
            return Links(request).project(key)
    raise JiraError(404, [f"No project could be found with key '{ref}'."])


@api.post("/issue", status_code=201)
async def create_issue(request: Request) -> dict[str, Any]:
    authenticate(request)
    issue = get_site(request).create(await json_body(request))
    return {"id": issue.id, "key": issue.key, "self": f"{Links(request).api}/issue/{issue.id}"}


@api.get("/issue/{ref}")
async def get_issue(ref: str, request: Request, fields: str | None = None, expand: str | None = None) -> dict:
    authenticate(request)
    site = get_site(request)
    return Links(request).issue(site, site.get(ref), fields, expand)


@api.put("/issue/{ref}", status_code=204)
async def edit_issue(ref: str, request: Request) -> Response:
    authenticate(request)
    site = get_site(request)
    site.edit(site.get(ref), await json_body(request))
    return Response(status_code=204)


@api.get("/issue/{ref}/comment")
async def list_comments(ref: str, request: Request) -> dict[str, Any]:
    authenticate(request)
    return Links(request).comments(get_site(request).get(ref))


@api.post("/issue/{ref}/comment", status_code=201)
async def add_comment(ref: str, request: Request) -> dict[str, Any]:
    authenticate(request)
    site = get_site(request)
    issue = site.get(ref)
    return Links(request).comment(issue, site.add_comment(issue, await json_body(request)))


@api.get("/issue/{ref}/transitions")
async def list_transitions(ref: str, request: Request) -> dict[str, Any]:
    authenticate(request)
    site = get_site(request)
    links = Links(request)
    issue = site.get(ref)
    transitions = [{"id": ident, "name": target, "to": links.status(target), "hasScreen": False, "isGlobal": True,
                    "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
                   for ident, target in site.available_transitions(issue)]
    return {"expand": "transitions", "transitions": transitions}


@api.post("/issue/{ref}/transitions", status_code=204)
async def do_transition(ref: str, request: Request) -> Response:
    authenticate(request)
    site = get_site(request)
    site.transition(site.get(ref), await json_body(request))
    return Response(status_code=204)


@api.post("/issue/{ref}/attachments")
async def add_attachments(ref: str, request: Request) -> list[dict[str, Any]]:
    authenticate(request)
    if request.headers.get("x-atlassian-token", "").lower() != "no-check":
        raise JiraError(403, ["XSRF check failed"])
    site = get_site(request)
    issue = site.get(ref)
    form = await request.form()
    uploads = [upload for upload in form.getlist("file") if isinstance(upload, UploadFile)]
    if not uploads:
        raise JiraError(400, ["No attachment found: send it as the multipart parameter 'file'."])
    links = Links(request)
    added = []
    for upload in uploads:
        filename = upload.filename or "attachment"
        mime_type = mimetypes.guess_type(filename)[0] or upload.content_type or "application/octet-stream"
        added.append(links.attachment(site.add_attachment(issue, filename, await upload.read(), mime_type)))
    return added


@api.post("/issueLink", status_code=201)
async def create_issue_link(request: Request) -> Response:
    """Link two issues; Jira answers 201 with an empty body."""
    authenticate(request)
    get_site(request).link(await json_body(request))
    return Response(status_code=201)


@api.get("/issueLink/{ident}")
async def get_issue_link(ident: str, request: Request) -> dict[str, Any]:
    authenticate(request)
    site = get_site(request)
    return Links(request).issue_link(site, site.get_link(ident))


@api.delete("/issueLink/{ident}", status_code=204)
async def delete_issue_link(ident: str, request: Request) -> Response:
    authenticate(request)
    site = get_site(request)
    del site.links[site.get_link(ident).id]
    return Response(status_code=204)


@api.get("/issueLinkType")
async def list_issue_link_types(request: Request) -> dict[str, Any]:
    authenticate(request)
    links = Links(request)
    return {"issueLinkTypes": [links.link_type(name) for name in LINK_TYPES]}


@api.api_route("/search", methods=["GET", "POST"])
async def search(request: Request) -> dict[str, Any]:
    """Search with ``startAt``/``maxResults``/``total`` paging (Jira Server/Data Center, and Cloud before 2025)."""
    authenticate(request)
    _unless_removed(request)
    args = await _search_arguments(request)
    site = get_site(request)
    try:
        start = max(int(args.get("startAt") or 0), 0)
    except (TypeError, ValueError):
        raise JiraError(400, errors={"startAt": f"'{args.get('startAt')}' is not a number."}) from None
    size = _page_size(args.get("maxResults"))
    found = site.search(_parse(args.get("jql")))
    links = Links(request)
    issues = [links.issue(site, issue, args.get("fields"), args.get("expand")) for issue in found[start:start + size]]
    return {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(found), "issues": issues}


@api.api_route("/search/jql", methods=["GET", "POST"])
async def search_jql(request: Request) -> dict[str, Any]:
    """Jira Cloud's enhanced search: ``nextPageToken`` paging, only issue ids unless ``fields`` asks."""
    authenticate(request)
    args = await _search_arguments(request)
    site = get_site(request)
    start = _decode_page_token(args.get("nextPageToken"))
    size = _page_size(args.get("maxResults"))
    found = site.search(_parse(args.get("jql")), _reconcile_ids(request, args))
    links = Links(request)
    fields = args.get("fields")
    page = found[start:start + size]
    issues = [links.issue(site, i, fields, args.get("expand")) if fields else {"id": i.id} for i in page]
    following = start + size
    answer: dict[str, Any] = {"issues": issues, "isLast": following >= len(found)}
    if following < len(found):
        answer["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{following}".encode()).decode()
    return answer


SEARCH_REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                  "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")


def _unless_removed(request: Request) -> None:
    """Jira Cloud answers 410 Gone on the retired search endpoints; Server/DC has no v3 API at all."""
    site = get_site(request)
    if site.cloud:
        raise JiraError(410, [SEARCH_REMOVED])
    if "/rest/api/3/" in request.url.path:
        raise JiraError(404, ["null for uri: " + str(request.url)])


@api_v3.api_route("/search", methods=["GET", "POST"])
async def search_v3(request: Request) -> dict[str, Any]:
    """``/rest/api/3/search``: gone on Cloud, absent on Server/DC."""
    authenticate(request)
    _unless_removed(request)
    return {}


def _reconcile_ids(request: Request, args: dict[str, Any]) -> frozenset[str]:
    """``reconcileIssues``: issue ids (a JSON list in a POST; repeated or comma-separated in a GET)."""
    given = args.get("reconcileIssues") if request.method == "POST" else request.query_params.getlist("reconcileIssues")
    values = [part for value in given or [] for part in str(value).split(",") if part.strip()]
    if not all(value.strip().isdigit() for value in values):
        raise JiraError(400, errors={"reconcileIssues": "Issue ids must be numbers."})
    if len(values) > 50:
        raise JiraError(400, errors={"reconcileIssues": "At most 50 issues can be reconciled."})
    return frozenset(value.strip() for value in values)


def _parse(jql: Any) -> jira_jql.Query:
    try:
        return jira_jql.parse(None if jql is None else str(jql))
    except jira_jql.JqlError as error:
        raise JiraError(400, [str(error)]) from None


def _decode_page_token(token: Any) -> int:
    if not token:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(str(token)).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, offset = "", ""
    if kind != "offset" or not offset.isdigit():
        raise JiraError(400, ["The nextPageToken is invalid."])
    return int(offset)


router = APIRouter(prefix=PREFIX, tags=["jira"], route_class=JiraRoute, default_response_class=JiraResponse)
router.include_router(api, prefix="/rest/api/2")
router.include_router(api, prefix="/rest/api/latest")
router.include_router(api_v3, prefix="/rest/api/3")


@router.get("/secure/attachment/{ident}/{filename}")
async def attachment_content(ident: str, filename: str, request: Request) -> Response:
    """An attachment's bytes, where its ``content`` link points."""
    authenticate(request)
    site = get_site(request)
    for issue in site.issues.values():
        for attachment in issue.attachments:
            if attachment["id"] == ident:
                return Response(site.contents[ident], media_type=attachment["mimeType"])
    raise JiraError(404, [NO_ISSUE])


@router.put("/_sandbox/deployment")
async def set_deployment(request: Request) -> dict[str, Any]:
    """``{"deploymentType": "Cloud" | "Server", "index_lag_s": seconds}``: which Jira the site behaves as."""
    body = await json_body(request)
    body = body if isinstance(body, dict) else {}
    site = get_site(request)
    site.set_deployment(str(body.get("deploymentType")), body.get("index_lag_s"))
    return {"deploymentType": site.deployment, "index_lag_s": site.index_lag_s}


@router.get("/_sandbox/issues")
async def list_issues(request: Request) -> dict[str, Any]:
    """Every issue with its fields, comments, attachments (names and sizes) and transitions."""
    site = get_site(request)
    return {"issues": [
        {"id": issue.id, "key": issue.key, "project": issue.project, "issuetype": issue.issuetype,
         "status": issue.status, "resolution": issue.resolution, "parent": issue.parent, "fields": issue.fields,
         "created": timestamp(issue.created), "updated": timestamp(issue.updated), "comments": issue.comments,
         "attachments": [{"filename": a["filename"], "size": a["size"], "mimeType": a["mimeType"]}
                         for a in issue.attachments],
         "transitions": issue.transitions,
         "links": [{"id": link.id, "type": link.type, "inward": link.inward, "outward": link.outward}
                   for link in site.links_of(issue)]}
        for issue in site.issues.values()
    ]}  # fmt: skip


@router.delete("/_sandbox/issues")
async def clear_issues(request: Request) -> dict[str, Any]:
    """Forget every issue; keys start again at 1."""
    get_site(request).clear()
    return {"cleared": True}


HOW_TO_TICKETS = (  # summary, description, resolution comment
    ("How do I reset a customer's portal password?",
     "A customer cannot log in to the portal and the reset e-mail never arrives.",
     "Open the Okta admin console > Directory > People, find the customer and choose Reset password; "
     "if the e-mail bounces, check the address in the CRM first."),
    ("How do I re-run the nightly settlement?",
     "The settlement batch failed at 02:10 and finance needs the file today.",
     "Clear the failed task of the settlement DAG in Airflow; it is idempotent per business date."),
    ("How do I release stuck orders?",
     "Orders stay in 'pending' for more than an hour after payment.",
     None),  # answered in the description only: no resolution comment
)


@router.post("/_sandbox/seed/how-to")
async def seed_how_to(request: Request) -> dict[str, Any]:
    """Resolved OPS tickets labelled ``how-to``, each once (by summary), for the knowledge base."""
    site = get_site(request)
    existing = {issue.fields["summary"] for issue in site.issues.values()}
    created = []
    for summary, description, answer in HOW_TO_TICKETS:
        if summary in existing:
            continue
        issue = site.create({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                                        "summary": summary, "description": description, "labels": ["how-to"]}})
        update = {"comment": [{"add": {"body": answer}}]} if answer else {}
        site.transition(issue, {"transition": {"id": "31"}, "update": update})
        issue.created -= timedelta(days=30)  # old tickets: long since in a Cloud site's search index
        created.append(issue.key)
    return {"created": created}

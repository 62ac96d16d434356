"""Confluence Cloud stand-in: pages and their attachments through the REST API v1.

Under ``/confluence`` (the Connection's host is ``http://HOST:PORT/confluence``; the API lives at
``/confluence/wiki/rest/api`` as it does at ``https://acme.atlassian.net/wiki/rest/api``), with
HTTP Basic auth (account email + API token) on every call:

- ``GET content?spaceKey=&title=&type=page&expand=&start=&limit=``: ``results``/``start``/``limit``/
  ``size`` and ``_links.next`` (relative to ``_links.base``) while more pages follow
- ``POST content`` (200 with the new page; 400 when the space already has a page with that title)
- ``GET content/{id}?expand=``, ``PUT content/{id}`` (``version.number`` must be the current one + 1,
  else 409)
- ``GET content/{id}/child/attachment?filename=&start=&limit=``, ``POST content/{id}/child/attachment``
  (multipart ``file`` and optional ``comment``; needs ``X-Atlassian-Token: no-check``; 400 when the
  file name is taken), ``POST content/{id}/child/attachment/{attachmentId}/data`` (a new version)
- ``GET /confluence/wiki/download/attachments/{pageId}/{filename}?version=``: the bytes (the
  attachment's ``_links.download``)
- ``GET``/``POST content/{id}/label`` (labels, optional for clients)

Pages also through the REST API v2, which Atlassian made the way to pages (the v1 content
endpoints are deprecated; attachment upload stays v1), at ``/confluence/wiki/api/v2``:

- ``GET spaces?keys=`` (the numeric ``id`` v2 names a space by)
- ``GET pages?space-id=&title=&status=&body-format=storage&limit=&cursor=``: ``results`` and
  ``_links.next`` (``/wiki/api/v2/pages?cursor=...``, relative to the site) plus a ``Link`` header
- ``POST pages`` (``spaceId``, ``status``, ``title``, ``parentId``, ``body: {representation, value}``;
  200 with the page; 400 when the space has a page with that title)
- ``GET pages/{id}?body-format=storage``, ``PUT pages/{id}`` (``version.number`` the current + 1, else 409)
- ``GET pages/{id}/attachments?filename=`` (each with ``comment``, ``fileSize``, ``version``, ``downloadLink``;
  https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-attachment/#api-pages-id-attachments-get)

Pages carry ``spaceId``, ``parentId``, ``version {number, message, createdAt}``, ``body.storage`` when
asked, ``_links.webui``; errors are v2's ``{"errors": [{"status", "code", "title", "detail"}]}``
(https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-page/,
https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-space/,
https://developer.atlassian.com/cloud/confluence/rest/v2/intro/#using for cursor paging).

References: https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/,
https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content---attachments/,
https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content-labels/ and, for
paging (``_links.next``), https://developer.atlassian.com/cloud/confluence/rest/v1/intro/#about.

A page body is stored verbatim, exactly as the client sent its storage format, so tests can
see what escaping the client did. ``GET /confluence/_sandbox/pages`` lists every page with its
space, version, body, ancestors and attachments (sha256 and version count); ``DELETE`` clears.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from sandbox.api_route import SystemRoute

PREFIX = "/confluence"
FAULT_PREFIX = "/confluence/"
SANDBOX_USER = "prep-support@example.com"
SANDBOX_TOKEN = "sandbox-confluence-token"
# The site's spaces; another space key is answered 404, as Confluence does, so a typo in config shows.
SPACES = {"SUP": "Production Support", "KB": "Support Knowledge Base", "OPS": "Operations",
          "UAT": "User Acceptance Testing"}
DEFAULT_LIMIT, MAX_LIMIT = 25, 200  # Confluence Cloud caps content lists at 200 (attachments at 200 too)
FIRST_PAGE_ID = 98_305
SPACE_IDS = {key: str(131_073 + index) for index, key in enumerate(SPACES)}  # v2 names spaces by id
V2 = "/wiki/api/v2"


class ConfluenceError(Exception):
    """An error answered in Confluence's shape ``{"statusCode", "data", "message"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="Confluence"'} if self.status == 401 else None
        return JSONResponse(error_body(self.status, self.message), status_code=self.status, headers=headers)


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Confluence's error shape; without a message, the body of an injected fault."""
    return {"statusCode": status, "data": {"authorized": status not in (401, 403), "valid": status != 400,
                                           "errors": [], "successful": False},
            "message": message or f"Injected fault: HTTP {status}"}


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AttachmentVersion:
    number: int
    data: bytes
    media_type: str
    comment: str
    created: str = field(default_factory=timestamp)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Attachment:
    id: str
    page_id: str
    filename: str
    versions: list[AttachmentVersion] = field(default_factory=list)

    @property
    def current(self) -> AttachmentVersion:
        return self.versions[-1]


@dataclass
class PageVersion:
    number: int
    title: str
    body: str
    message: str = ""
    when: str = field(default_factory=timestamp)


@dataclass
class Page:
    id: str
    space: str
    parent_id: str | None
    versions: list[PageVersion]
    attachments: dict[str, Attachment] = field(default_factory=dict)  # by filename
    labels: list[str] = field(default_factory=list)
    created: str = field(default_factory=timestamp)

    @property
    def current(self) -> PageVersion:
        return self.versions[-1]

    @property
    def title(self) -> str:
        return self.current.title


class ConfluenceSite:
    """The sandbox site's pages, by id."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.pages: dict[str, Page] = {}
        self.next_id = FIRST_PAGE_ID
        self.next_attachment = 1

    def get(self, page_id: str) -> Page:
        page = self.pages.get(page_id)
        if page is None:
            raise ConfluenceError(404, f"No content found with id: ContentId{{id={page_id}}}")
        return page

    def by_title(self, space: str, title: str) -> Page | None:
        return next((p for p in self.pages.values() if p.space == space and p.title == title), None)

    def ancestors(self, page: Page) -> list[Page]:
        """Root first, as Confluence lists them."""
        chain, parent = [], page.parent_id
        while parent is not None:
            chain.append(self.pages[parent])
            parent = self.pages[parent].parent_id
        return list(reversed(chain))

    def create(self, payload: dict[str, Any]) -> Page:
        if payload.get("type", "page") != "page":
            raise ConfluenceError(400, f"The sandbox creates pages only, not {payload.get('type')!r}")
        space = (payload.get("space") or {}).get("key")
        if space not in SPACES:
            raise ConfluenceError(404, f"No space with key : {space}")
        title = _title(payload)
        if self.by_title(space, title) is not None:
            raise ConfluenceError(400, "A page with this title already exists: A page already exists with the "
                                       "same TITLE in this space")
        parent_id = self._parent(payload, space)
        page = Page(id=str(self.next_id), space=space, parent_id=parent_id,
                    versions=[PageVersion(1, title, _storage(payload), _version_message(payload))])
        self.next_id += 1
        self.pages[page.id] = page
        return page

    def update(self, page_id: str, payload: dict[str, Any]) -> Page:
        page = self.get(page_id)
        number = (payload.get("version") or {}).get("number")
        if number != page.current.number + 1:
            raise ConfluenceError(409, "Version must be incremented on update. Current version is: "
                                       f"{page.current.number}")
        title = _title(payload)
        other = self.by_title(page.space, title)
        if other is not None and other.id != page.id:
            raise ConfluenceError(400, "A page with this title already exists: A page already exists with the "
                                       "same TITLE in this space")
        if payload.get("ancestors"):
            page.parent_id = self._parent(payload, page.space)
        body = _storage(payload) if payload.get("body") else page.current.body
        page.versions.append(PageVersion(number, title, body, _version_message(payload)))
        return page

    def _parent(self, payload: dict[str, Any], space: str) -> str | None:
        ancestors = payload.get("ancestors") or []
        if not ancestors:
            return None
        parent_id = str((ancestors[-1] or {}).get("id", ""))
        parent = self.get(parent_id)
        if parent.space != space:
            raise ConfluenceError(400, f"The parent page {parent_id} is not in space {space}")
        return parent_id

    def attach(self, page: Page, filename: str, data: bytes, media_type: str, comment: str) -> Attachment:
        if filename in page.attachments:
            raise ConfluenceError(400, "Cannot add a new attachment with same file name as an existing attachment: "
                                       f"{filename}")
        attachment = Attachment(id=f"att{self.next_attachment}", page_id=page.id, filename=filename,
                                versions=[AttachmentVersion(1, data, media_type, comment)])
        self.next_attachment += 1
        page.attachments[filename] = attachment
        return attachment

    def attachment(self, page: Page, attachment_id: str) -> Attachment:
        found = next((a for a in page.attachments.values() if a.id == attachment_id), None)
        if found is None:
            raise ConfluenceError(404, f"No attachment with id {attachment_id} on content {page.id}")
        return found


def _title(payload: dict[str, Any]) -> str:
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfluenceError(400, "Content title must not be empty")
    if len(title) > 255:
        raise ConfluenceError(400, "Title cannot be longer than 255 characters.")
    return title


def _version_message(payload: dict[str, Any]) -> str:
    return str((payload.get("version") or {}).get("message") or "")


def _storage(payload: dict[str, Any]) -> str:
    storage = ((payload.get("body") or {}).get("storage")) or {}
    if storage.get("representation") != "storage" or not isinstance(storage.get("value"), str):
        raise ConfluenceError(400, "body.storage needs a string value and representation 'storage'")
    return storage["value"]


def authenticate(request: Request) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        login, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        login, token = "", ""
    if scheme.lower() != "basic" or login != SANDBOX_USER or not secrets.compare_digest(token, SANDBOX_TOKEN):
        raise ConfluenceError(401, "Client must be authenticated to access this resource.")


class ConfluenceRoute(SystemRoute):
    """Checks Basic auth on the API and answers :class:`ConfluenceError` in Confluence's shape."""

    error = ConfluenceError

    def authenticate(self, request: Request) -> None:
        authenticate(request)


router = APIRouter(prefix=PREFIX, tags=["confluence"], route_class=ConfluenceRoute)
API = "/wiki/rest/api"


def get_site(request: Request) -> ConfluenceSite:
    return request.app.state.confluence


class Links:
    """Links of one answer: ``base`` is the site's ``.../wiki``; others are relative to it, as in Cloud."""

    def __init__(self, request: Request) -> None:
        self.base = f"{str(request.base_url).rstrip('/')}{PREFIX}/wiki"

    def page(self, site: ConfluenceSite, page: Page, expand: set[str], brief: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": page.id, "type": "page", "status": "current", "title": page.title,
            "_links": {"webui": f"/spaces/{page.space}/pages/{page.id}/{quote(page.title.replace(' ', '+'))}",
                       "tinyui": f"/x/{page.id}", "self": f"{self.base}/rest/api/content/{page.id}"},
            "_expandable": {"space": f"/rest/api/space/{page.space}", "version": "", "body": "", "ancestors": "",
                            "children": f"/rest/api/content/{page.id}/child"},
        }
        if brief:
            return shown
        if "space" in expand:
            shown["space"] = {"key": page.space, "name": SPACES[page.space], "type": "global",
                              "_links": {"webui": f"/spaces/{page.space}"}}
        if "version" in expand:
            current = page.current
            shown["version"] = {"number": current.number, "when": current.when, "minorEdit": False,
                                "message": current.message,
                                "by": {"type": "known", "email": SANDBOX_USER, "displayName": "Prep Support"}}
        if "body.storage" in expand or "body" in expand:
            shown["body"] = {"storage": {"value": page.current.body, "representation": "storage"}}
        if "ancestors" in expand:
            shown["ancestors"] = [self.page(site, a, set(), brief=True) for a in site.ancestors(page)]
        if "metadata.labels" in expand:
            shown["metadata"] = {"labels": self.labels(page)}
        for name in ("space", "version", "body", "ancestors"):
            if name in shown:
                shown["_expandable"].pop(name, None)
        return shown

    def labels(self, page: Page) -> dict[str, Any]:
        results = [{"prefix": "global", "name": name, "id": str(abs(hash(name)) % 10**9), "label": name}
                   for name in page.labels]
        return {"results": results, "start": 0, "limit": 200, "size": len(results)}

    def attachment(self, attachment: Attachment, page: Page) -> dict[str, Any]:
        current = attachment.current
        download = (f"/download/attachments/{page.id}/{quote(attachment.filename)}"
                    f"?version={current.number}&api=v2")
        return {
            "id": attachment.id, "type": "attachment", "status": "current", "title": attachment.filename,
            "metadata": {"mediaType": current.media_type, "comment": current.comment},
            "extensions": {"mediaType": current.media_type, "fileSize": len(current.data),
                           "comment": current.comment},
            "version": {"number": current.number, "when": current.created, "minorEdit": True},
            "container": {"id": page.id, "type": "page", "title": page.title},
            "_links": {"download": download, "webui": f"/pages/viewpageattachments.action?pageId={page.id}",
                       "self": f"{self.base}/rest/api/content/{attachment.id}"},
        }


def _expand(request: Request) -> set[str]:
    return {part.strip() for part in request.query_params.get("expand", "").split(",") if part.strip()}


def _paging(request: Request) -> tuple[int, int]:
    try:
        start = int(request.query_params.get("start") or 0)
        limit = int(request.query_params.get("limit") or DEFAULT_LIMIT)
    except ValueError:
        raise ConfluenceError(400, "start and limit must be numbers") from None
    if start < 0 or limit < 1:
        raise ConfluenceError(400, "start must be >= 0 and limit >= 1")
    return start, min(limit, MAX_LIMIT)


def _page_of(request: Request, items: list[Any], path: str, links: Links,
             shown: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    start, limit = _paging(request)
    chunk = items[start:start + limit]
    query = {k: v for k, v in request.query_params.items() if k not in ("start", "limit")}
    answer_links = {"base": links.base, "context": "/wiki",
                    "self": f"{links.base}{path}?{urlencode({**query, 'start': start, 'limit': limit})}"}
    if start + limit < len(items):
        answer_links["next"] = f"{path}?{urlencode({**query, 'start': start + limit, 'limit': limit})}"
    return {"results": [shown(item) for item in chunk], "start": start, "limit": limit, "size": len(chunk),
            "_links": answer_links}


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = await request.json()
    except ValueError:
        raise ConfluenceError(400, "Could not parse the request body as JSON") from None
    if not isinstance(payload, dict):
        raise ConfluenceError(400, "The request body must be a JSON object")
    return payload


@router.get(f"{API}/content")
async def list_content(request: Request) -> dict[str, Any]:
    """Pages, filtered by ``spaceKey`` and ``title`` (exact), oldest first."""
    site, params = get_site(request), request.query_params
    if params.get("type", "page") != "page":
        return _page_of(request, [], "/rest/api/content", Links(request), lambda _: {})
    pages = [p for p in site.pages.values()
             if (not params.get("spaceKey") or p.space == params["spaceKey"])
             and (not params.get("title") or p.title == params["title"])]
    links, expand = Links(request), _expand(request)
    return _page_of(request, pages, "/rest/api/content", links, lambda p: links.page(site, p, expand))


@router.post(f"{API}/content")
async def create_content(request: Request) -> dict[str, Any]:
    site = get_site(request)
    page = site.create(await _json_object(request))
    return Links(request).page(site, page, {"space", "version", "body.storage", "ancestors"})


@router.get(f"{API}/content/{{page_id}}")
async def get_content(page_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    return Links(request).page(site, site.get(page_id), _expand(request) | {"space", "version"})


@router.put(f"{API}/content/{{page_id}}")
async def update_content(page_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    page = site.update(page_id, await _json_object(request))
    return Links(request).page(site, page, {"space", "version", "body.storage", "ancestors"})


@router.get(f"{API}/content/{{page_id}}/label")
async def list_labels(page_id: str, request: Request) -> dict[str, Any]:
    return Links(request).labels(get_site(request).get(page_id))


@router.post(f"{API}/content/{{page_id}}/label")
async def add_labels(page_id: str, request: Request) -> dict[str, Any]:
    page = get_site(request).get(page_id)
    try:
        wanted = await request.json()
    except ValueError:
        raise ConfluenceError(400, "Could not parse the request body as JSON") from None
    for label in wanted if isinstance(wanted, list) else [wanted]:
        name = (label or {}).get("name") if isinstance(label, dict) else None
        if not name or " " in name:
            raise ConfluenceError(400, f"Invalid label {label!r}: a name without spaces is needed")
        if name not in page.labels:
            page.labels.append(name)
    return Links(request).labels(page)


@router.get(f"{API}/content/{{page_id}}/child/attachment")
async def list_attachments(page_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    page = site.get(page_id)
    wanted = request.query_params.get("filename")
    found = [a for a in page.attachments.values() if not wanted or a.filename == wanted]
    links = Links(request)
    return _page_of(request, found, f"/rest/api/content/{page_id}/child/attachment", links,
                    lambda a: links.attachment(a, page))


async def _upload(request: Request) -> tuple[str, bytes, str, str]:
    if request.headers.get("x-atlassian-token", "").lower() != "no-check":
        raise ConfluenceError(403, "XSRF check failed")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ConfluenceError(400, "No file: send the attachment as the multipart parameter 'file'")
    comment = form.get("comment")
    media_type = upload.content_type or "application/octet-stream"
    return upload.filename or "attachment", await upload.read(), media_type, comment if isinstance(comment, str) else ""


@router.post(f"{API}/content/{{page_id}}/child/attachment")
async def add_attachment(page_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    page = site.get(page_id)
    filename, data, media_type, comment = await _upload(request)
    attachment = site.attach(page, filename, data, media_type, comment)
    return {"results": [Links(request).attachment(attachment, page)], "size": 1}


@router.post(f"{API}/content/{{page_id}}/child/attachment/{{attachment_id}}/data")
async def update_attachment_data(page_id: str, attachment_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    page = site.get(page_id)
    attachment = site.attachment(page, attachment_id)
    filename, data, media_type, comment = await _upload(request)
    if filename != attachment.filename:
        raise ConfluenceError(400, f"The new data's file name {filename!r} differs from {attachment.filename!r}")
    attachment.versions.append(AttachmentVersion(attachment.current.number + 1, data, media_type, comment))
    return Links(request).attachment(attachment, page)


@router.get("/wiki/download/attachments/{page_id}/{filename}")
async def download_attachment(page_id: str, filename: str, request: Request) -> Response:
    page = get_site(request).get(page_id)
    attachment = page.attachments.get(filename)
    if attachment is None:
        raise ConfluenceError(404, f"No attachment {filename!r} on content {page_id}")
    version = request.query_params.get("version")
    chosen = next((v for v in attachment.versions if str(v.number) == version), None) if version else None
    chosen = chosen or attachment.current
    return Response(chosen.data, media_type=chosen.media_type)


@router.get("/_sandbox/pages")
async def sandbox_pages(request: Request) -> dict[str, Any]:
    """Every page with its body, ancestors and attachments, oldest first."""
    site = get_site(request)
    return {"pages": [
        {"id": page.id, "title": page.title, "space": page.space, "version": page.current.number,
         "body": page.current.body, "ancestors": [a.title for a in site.ancestors(page)],
         "parent_id": page.parent_id, "labels": page.labels,
         "versions": [{"number": v.number, "title": v.title, "body": v.body, "message": v.message}
                      for v in page.versions],
         "attachments": [{"id": a.id, "filename": a.filename, "version": a.current.number,
                          "versions": len(a.versions), "sha256": a.current.sha256, "size": len(a.current.data),
                          "media_type": a.current.media_type, "comment": a.current.comment}
                         for a in page.attachments.values()]}
        for page in site.pages.values()
    ]}


@router.delete("/_sandbox/pages")
async def clear_pages(request: Request) -> dict[str, Any]:
    get_site(request).clear()
    return {"cleared": True}


# --- REST API v2: pages -----------------------------------------------------------------------------


class V2Error(ConfluenceError):
    """An error in v2's shape."""

    def response(self) -> JSONResponse:
        code = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 409: "CONFLICT"}.get(self.status, "ERROR")
        return JSONResponse({"errors": [{"status": self.status, "code": code, "title": self.message,
                                         "detail": None}]}, status_code=self.status)


def v2_errors(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except V2Error:
        raise
    except ConfluenceError as error:
        raise V2Error(error.status, error.message) from None


def v2_page(page: Page, body_format: str | None) -> dict[str, Any]:
    current = page.current
    shown: dict[str, Any] = {
        "id": page.id, "status": "current", "title": page.title, "spaceId": SPACE_IDS[page.space],
        "parentId": page.parent_id, "parentType": "page" if page.parent_id else None, "position": None,
        "authorId": "557058:prep-support", "ownerId": "557058:prep-support", "createdAt": page.created,
        "version": {"createdAt": current.when, "message": current.message, "number": current.number,
                    "minorEdit": False, "authorId": "557058:prep-support"},
        "body": {},
        "_links": {"webui": f"/spaces/{page.space}/pages/{page.id}/{quote(page.title.replace(' ', '+'))}",
                   "editui": f"/pages/resumedraft.action?draftId={page.id}", "tinyui": f"/x/{page.id}"},
    }
    if body_format == "storage":
        shown["body"] = {"storage": {"representation": "storage", "value": current.body}}
    elif body_format not in (None, ""):
        raise V2Error(400, f"The sandbox answers body-format=storage only, not {body_format!r}")
    return shown


def _space_key(space_id: Any) -> str:
    key = next((key for key, ident in SPACE_IDS.items() if ident == str(space_id)), None)
    if key is None:
        raise V2Error(404, f"No space with id {space_id}")
    return key


def _v1_payload(payload: dict[str, Any], space: str) -> dict[str, Any]:
    """A v2 page payload in the v1 shape the site's rules are written for."""
    body = payload.get("body") or {}
    converted: dict[str, Any] = {"type": "page", "title": payload.get("title"), "space": {"key": space},
                                 "version": payload.get("version") or {}}
    if body:
        converted["body"] = {"storage": {"representation": body.get("representation"), "value": body.get("value")}}
    if payload.get("parentId"):
        converted["ancestors"] = [{"id": str(payload["parentId"])}]
    return converted


@router.get(f"{V2}/spaces")
async def v2_spaces(request: Request) -> dict[str, Any]:
    keys = [key for key in request.query_params.get("keys", "").split(",") if key] or list(SPACES)
    return {"results": [{"id": SPACE_IDS[key], "key": key, "name": SPACES[key], "type": "global",
                         "status": "current", "_links": {"webui": f"/spaces/{key}"}} for key in keys if key in SPACES],
            "_links": {"base": Links(request).base}}


@router.get(f"{V2}/pages")
async def v2_list_pages(request: Request) -> Response:
    """Pages of the spaces given, by exact title, oldest first; cursor paging."""
    site, params = get_site(request), request.query_params
    spaces = {v2_errors(lambda ident=ident: _space_key(ident)) for ident in params.get("space-id", "").split(",")
              if ident}
    pages = [p for p in site.pages.values() if (not spaces or p.space in spaces)
             and (not params.get("title") or p.title == params["title"])
             and params.get("status", "current") in ("current", "current,archived")]
    try:
        limit = min(int(params.get("limit") or DEFAULT_LIMIT), 250)
        start = int(base64.urlsafe_b64decode(params["cursor"]).decode()) if params.get("cursor") else 0
    except (ValueError, binascii.Error):
        raise V2Error(400, "limit must be a number and cursor one this site gave") from None
    chunk = pages[start:start + limit]
    answer: dict[str, Any] = {"results": [v2_page(p, params.get("body-format")) for p in chunk],
                              "_links": {"base": Links(request).base}}
    headers = {}
    if start + limit < len(pages):
        query = {k: v for k, v in params.items() if k != "cursor"}
        cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        answer["_links"]["next"] = f"{V2}/pages?{urlencode({**query, 'cursor': cursor})}"
        headers["Link"] = f'<{answer["_links"]["next"]}>; rel="next", <{Links(request).base}>; rel="base"'
    return JSONResponse(answer, headers=headers)


@router.post(f"{V2}/pages")
async def v2_create_page(request: Request) -> dict[str, Any]:
    site, payload = get_site(request), await _json_object(request)
    space = v2_errors(lambda: _space_key(payload.get("spaceId")))
    if payload.get("status", "current") != "current":
        raise V2Error(400, "The sandbox creates current pages only")
    page = v2_errors(lambda: site.create(_v1_payload(payload, space)))
    return v2_page(page, "storage")


@router.get(f"{V2}/pages/{{page_id}}")
async def v2_get_page(page_id: str, request: Request) -> dict[str, Any]:
    site = get_site(request)
    return v2_page(v2_errors(lambda: site.get(page_id)), request.query_params.get("body-format"))


@router.put(f"{V2}/pages/{{page_id}}")
async def v2_update_page(page_id: str, request: Request) -> dict[str, Any]:
    site, payload = get_site(request), await _json_object(request)
    if str(payload.get("id")) != page_id:
        raise V2Error(400, "The id in the body must be the page's id")
    page = v2_errors(lambda: site.get(page_id))
    updated = v2_errors(lambda: site.update(page_id, _v1_payload(payload, page.space)))
    return v2_page(updated, "storage")


@router.get(f"{V2}/pages/{{page_id}}/attachments")
async def v2_page_attachments(page_id: str, request: Request) -> dict[str, Any]:
    """The page's attachments, optionally by exact ``filename``."""
    page = v2_errors(lambda: get_site(request).get(page_id))
    wanted = request.query_params.get("filename")
    shown = []
    for attachment in page.attachments.values():
        if wanted and attachment.filename != wanted:
            continue
        current = attachment.current
        download = f"/download/attachments/{page.id}/{quote(attachment.filename)}?version={current.number}&api=v2"
        shown.append({"id": attachment.id, "status": "current", "title": attachment.filename, "pageId": page.id,
                      "createdAt": attachment.versions[0].created, "mediaType": current.media_type,
                      "comment": current.comment, "fileId": f"file-{attachment.id}", "fileSize": len(current.data),
                      "webuiLink": f"/pages/viewpageattachments.action?pageId={page.id}", "downloadLink": download,
                      "version": {"number": current.number, "createdAt": current.created, "message": "",
                                  "minorEdit": True},
                      "_links": {"download": download, "webui": f"/pages/viewpageattachments.action?pageId={page.id}"}})
    return {"results": shown, "_links": {"base": Links(request).base}}

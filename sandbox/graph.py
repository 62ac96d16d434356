"""Microsoft Graph stand-in for SharePoint document libraries, with the identity platform's token endpoint.

Under ``/graph``:

- ``POST /graph/login/{tenant}/oauth2/v2.0/token``: the client credentials grant (form
  ``grant_type=client_credentials``, ``client_id``, ``client_secret``, ``scope``); answers
  ``{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}``, or 400/401 with
  ``{"error", "error_description", "error_codes"}``
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow)
- ``GET /graph/v1.0/sites/{hostname}:/{server-relative-path}``: the site
  (https://learn.microsoft.com/en-us/graph/api/site-getbypath)
- ``GET /graph/v1.0/sites/{site-id}/drive``: its default document library
  (https://learn.microsoft.com/en-us/graph/api/drive-get)
- ``PUT .../drive/root:/{item-path}:/content``: upload (201 new, 200 replaced; folders on the way
  are created) (https://learn.microsoft.com/en-us/graph/api/driveitem-put-content)
- ``GET .../drive/root:/{item-path}`` and ``GET .../drive/root:/{folder-path}:/children``
  (``$top``, ``@odata.nextLink``) (https://learn.microsoft.com/en-us/graph/api/driveitem-get,
  https://learn.microsoft.com/en-us/graph/api/driveitem-list-children)
- ``GET .../drive/root:/{item-path}:/content``: 302 to a pre-authenticated download URL on
  another host, as Graph answers: "a 302 Found response redirecting to a preauthenticated download
  URL ... valid for a short period of time and doesn't require an Authorization header"
  (https://learn.microsoft.com/en-us/graph/api/driveitem-get-content). The sandbox's other host is
  its second HTTP port (``python -m sandbox`` listens on both); the URL ``/graph/_download/{key}``
  serves the bytes for a minute, and a request there that carries an ``Authorization`` header is
  refused with 401 and counted (``GET /graph/_sandbox/downloads``): a client must not send the
  Graph token to another host. ``PUT /graph/_sandbox/download-host`` ``{"same": true}`` points
  the redirect at the API's own port instead (a client's HTTP library strips the header only
  when the host changes; the download URL never wants it).

Every Graph call needs ``Authorization: Bearer <token>`` from the token endpoint, else 401 in
Graph's error shape ``{"error": {"code", "message", "innerError"}}``
(https://learn.microsoft.com/en-us/graph/errors). ``GET /graph/_sandbox/files`` lists every file
(path, size, sha256, eTag, version count); ``DELETE`` clears them; ``POST /graph/_sandbox/revoke-tokens``
makes every issued token invalid (as an expiry would), and ``PUT /graph/_sandbox/token-lifetime``
``{"seconds": n}`` sets how long new tokens last.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.api_route import SystemRoute

PREFIX = "/graph"
FAULT_PREFIX = "/graph/"
TENANT_ID = "00000000-0000-4000-8000-00000000c0de"
CLIENT_ID = "11111111-1111-4111-8111-111111111111"
CLIENT_SECRET = "sandbox-graph-client-secret"
HOSTNAME = "contoso.sharepoint.com"
SITE_PATH = "/sites/support"
SITE_GUID, WEB_GUID = "2c8b3d4e-5f60-4718-8293-a4b5c6d7e8f9", "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
SITE_ID = f"{HOSTNAME},{SITE_GUID},{WEB_GUID}"
DRIVE_ID = "b!sandboxSupportDocumentsDrive0000000000000000000000000000000"
SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_TOP, MAX_TOP = 200, 999
DOWNLOAD_URL_LIFETIME_S = 60


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'} if self.status == 401 else None
        return JSONResponse(error_body(self.status, self.code, self.message), status_code=self.status,
                            headers=headers)


def error_body(status: int, code: str | None = None, message: str | None = None) -> dict[str, Any]:
    """Graph's error shape; without code and message, the body of an injected fault."""
    default_codes = {429: "TooManyRequests", 503: "serviceNotAvailable", 500: "generalException"}
    return {"error": {"code": code or default_codes.get(status, "generalException"),
                      "message": message or f"Injected fault: HTTP {status}",
                      "innerError": {"date": timestamp(), "request-id": str(uuid.uuid4()),
                                     "client-request-id": str(uuid.uuid4())}}}


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DriveFile:
    id: str
    path: str  # below the drive root, without a leading slash
    content: bytes
    mime_type: str
    version: int = 1
    created: str = field(default_factory=timestamp)
    modified: str = field(default_factory=timestamp)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def etag(self) -> str:
        return f'"{{{self.id.upper()}}},{self.version}"'


@dataclass
class Tokens:
    issued: dict[str, float] = field(default_factory=dict)  # token -> expires at (monotonic)
    lifetime_s: int = 3599


class SharePointSite:
    """One site's document library: files by path (folders are implied by paths, and explicit ones kept)."""

    def __init__(self) -> None:
        self.tokens = Tokens()
        self.download_base_url: str | None = None  # the second port, set by ``python -m sandbox``
        self.clear()

    def clear(self) -> None:
        self.files: dict[str, DriveFile] = {}
        self.folders: dict[str, str] = {}  # path -> id
        self.downloads: dict[str, tuple[str, float]] = {}  # key -> path, valid until (monotonic)
        self.download_log: list[dict[str, Any]] = []
        self.same_host_downloads = False

    def issue_token(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        self.tokens.issued[token] = time.monotonic() + self.tokens.lifetime_s
        return {"token_type": "Bearer", "expires_in": self.tokens.lifetime_s,
                "ext_expires_in": self.tokens.lifetime_s, "access_token": token}

    def check_token(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        expires = self.tokens.issued.get(token)
        if expires is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if expires < time.monotonic():
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")

    def ensure_folder(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix in self.files:
                raise GraphError(409, "nameAlreadyExists", f"A file named {prefix!r} is in the way of a folder")
            self.folders.setdefault(prefix, _item_id())

    def put(self, path: str, content: bytes, mime_type: str) -> tuple[DriveFile, bool]:
        if path in self.folders:
            raise GraphError(409, "nameAlreadyExists", f"{path!r} is a folder")
        self.ensure_folder(path.rpartition("/")[0])
        existing = self.files.get(path)
        if existing is not None:
            existing.content, existing.mime_type = content, mime_type
            existing.version += 1
            existing.modified = timestamp()
            return existing, False
        created = DriveFile(id=_item_id(), path=path, content=content, mime_type=mime_type)
        self.files[path] = created
        return created, True

    def children(self, folder: str) -> list[dict[str, Any]]:
        if folder and folder not in self.folders:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        subfolders = [p for p in self.folders if p.rpartition("/")[0] == folder]
        files = [f for f in self.files.values() if f.folder == folder]
        return sorted([("folder", p) for p in subfolders] + [("file", f.path) for f in files], key=lambda x: x[1])


def _item_id() -> str:
    return "01" + secrets.token_hex(16).upper()[:32]


def _clean_path(raw: str) -> str:
    path = raw.strip("/")  # Starlette has already percent-decoded the request path
    parts = path.split("/") if path else []
    if any(p in ("", ".", "..") for p in parts):
        raise GraphError(400, "invalidRequest", f"Invalid path {raw!r}")
    bad = set('"*:<>?\\|') & set(path)
    if bad:
        raise GraphError(400, "invalidRequest", f"The path {raw!r} has characters SharePoint refuses: {''.join(bad)}")
    return path


class GraphRoute(SystemRoute):
    """Checks the bearer token on Graph calls and answers :class:`GraphError` in Graph's shape."""

    error = GraphError

    def needs_auth(self) -> bool:
        return "/v1.0/" in self.path  # the token endpoint itself takes the client secret instead

    def authenticate(self, request: Request) -> None:
        get_site(request).check_token(request)


router = APIRouter(prefix=PREFIX, tags=["graph"], route_class=GraphRoute)


def get_site(request: Request) -> SharePointSite:
    return request.app.state.graph


@router.post("/login/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> JSONResponse:
    """The client credentials grant of the Microsoft identity platform."""
    form = await request.form()
    if form.get("grant_type") != "client_credentials":
        return _token_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
    if tenant != TENANT_ID:
        return _token_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    if form.get("client_id") != CLIENT_ID:
        return _token_error(400, "unauthorized_client", 700016,
                            f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
    if not secrets.compare_digest(str(form.get("client_secret") or ""), CLIENT_SECRET):
        return _token_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
    if form.get("scope") != SCOPE:
        return _token_error(400, "invalid_scope", 1002012,
                            f"The provided value for scope {form.get('scope')} is not valid; use {SCOPE}.")
    return JSONResponse(get_site(request).issue_token())


def _token_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code],
                         "timestamp": timestamp(), "trace_id": str(uuid.uuid4()),
                         "correlation_id": str(uuid.uuid4())}, status_code=status)


def _site_json(request: Request) -> dict[str, Any]:
    return {"id": SITE_ID, "name": SITE_PATH.rsplit("/", 1)[-1], "displayName": "Support",
            "webUrl": f"https://{HOSTNAME}{SITE_PATH}", "createdDateTime": "2024-01-08T09:00:00Z",
            "siteCollection": {"hostname": HOSTNAME}}


def _web_url(path: str) -> str:
    return f"https://{HOSTNAME}{SITE_PATH}/Shared%20Documents/{quote(path)}"


def _parent(folder: str, site: SharePointSite) -> dict[str, Any]:
    return {"driveType": "documentLibrary", "driveId": DRIVE_ID, "id": site.folders.get(folder, "root"),
            "path": "/drive/root:" + (f"/{folder}" if folder else "")}


def _file_json(item: DriveFile, site: SharePointSite) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "size": len(item.content), "webUrl": _web_url(item.path),
            "eTag": item.etag, "cTag": f'"c:{{{item.id.upper()}}},{item.version}"',
            "createdDateTime": item.created, "lastModifiedDateTime": item.modified,
            "file": {"mimeType": item.mime_type},
            "parentReference": _parent(item.folder, site)}


def _folder_json(path: str, site: SharePointSite) -> dict[str, Any]:
    count = len(site.children(path))
    return {"id": site.folders.get(path, "root"), "name": path.rsplit("/", 1)[-1] if path else "root",
            "webUrl": _web_url(path), "folder": {"childCount": count}, "size": 0,
            "parentReference": _parent(path.rpartition("/")[0], site)}


def _item_json(path: str, site: SharePointSite) -> dict[str, Any]:
    if path in site.files:
        return _file_json(site.files[path], site)
    if path == "" or path in site.folders:
        return _folder_json(path, site)
    raise GraphError(404, "itemNotFound", "The resource could not be found.")


@router.get("/v1.0/sites/{rest:path}")
async def sites_get(rest: str, request: Request) -> Response:
    """Sites by path, the site's drive, items and children by path, and file content."""
    site = get_site(request)
    if rest.startswith(f"{HOSTNAME}:"):
        if unquote(rest.removeprefix(f"{HOSTNAME}:")).rstrip("/").rstrip(":") != SITE_PATH:
            raise GraphError(404, "itemNotFound", "Requested site could not be found")
        return JSONResponse(_site_json(request))
    site_id, _, below = rest.partition("/")
    if unquote(site_id) != SITE_ID:
        raise GraphError(404, "itemNotFound", "Requested site could not be found")
    if below in ("", "/"):
        return JSONResponse(_site_json(request))
    if below == "drive":
        return JSONResponse({"id": DRIVE_ID, "driveType": "documentLibrary", "name": "Documents",
                             "webUrl": f"https://{HOSTNAME}{SITE_PATH}/Shared%20Documents"})
    if below in ("drive/root", "drive/root:", "drive/root:/"):
        return JSONResponse(_folder_json("", site))
    if below in ("drive/root/children", "drive/root:/:/children"):
        return _children(request, site, "")
    if not below.startswith("drive/root:/"):
        raise GraphError(400, "invalidRequest", f"The sandbox does not serve {below!r}")
    address = below.removeprefix("drive/root:/")
    if address.endswith(":/children"):
        return _children(request, site, _clean_path(address.removesuffix(":/children")))
    if address.endswith(":/content"):
        path = _clean_path(address.removesuffix(":/content"))
        if path not in site.files:
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        key = secrets.token_urlsafe(24)
        site.downloads[key] = (path, time.monotonic() + DOWNLOAD_URL_LIFETIME_S)
        own = str(request.base_url).rstrip("/")
        host = own if site.same_host_downloads or site.download_base_url is None else site.download_base_url
        return Response(status_code=302, headers={"Location": f"{host}{PREFIX}/_download/{key}?tempauth=1"})
    return JSONResponse(_item_json(_clean_path(address.removesuffix(":")), site))


def _children(request: Request, site: SharePointSite, folder: str) -> JSONResponse:
    params = request.query_params
    try:
        top = min(int(params.get("$top") or DEFAULT_TOP), MAX_TOP)
        skip = int(params.get("$skiptoken") or 0)
    except ValueError:
        raise GraphError(400, "invalidRequest", "$top must be a number and $skiptoken one this API gave") from None
    if top < 1:
        raise GraphError(400, "invalidRequest", "$top must be at least 1")
    entries = site.children(folder)
    chunk = entries[skip:skip + top]
    value = [_file_json(site.files[p], site) if kind == "file" else _folder_json(p, site) for kind, p in chunk]
    answer: dict[str, Any] = {"@odata.context": f"{request.base_url}graph/v1.0/$metadata#Collection(driveItem)",
                              "value": value}
    if skip + top < len(entries):
        following = urlencode({"$top": top, "$skiptoken": skip + top})
        answer["@odata.nextLink"] = f"{str(request.url).split('?')[0]}?{following}"
    return JSONResponse(answer)


@router.put("/v1.0/sites/{rest:path}")
async def sites_put(rest: str, request: Request) -> JSONResponse:
    """Upload a file's bytes by path: 201 when new, 200 when it replaced the file."""
    site = get_site(request)
    site_id, _, below = rest.partition("/")
    if unquote(site_id) != SITE_ID:
        raise GraphError(404, "itemNotFound", "Requested site could not be found")
    if not (below.startswith("drive/root:/") and below.endswith(":/content")):
        raise GraphError(400, "invalidRequest", "Upload with PUT .../drive/root:/{path}:/content")
    path = _clean_path(below.removeprefix("drive/root:/").removesuffix(":/content"))
    if not path:
        raise GraphError(400, "invalidRequest", "The upload needs a file path")
    mime_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    item, created = site.put(path, await request.body(), mime_type)
    return JSONResponse(_file_json(item, site), status_code=201 if created else 200)


@router.get("/_download/{key}")
async def download(key: str, request: Request) -> Response:
    """A pre-authenticated download URL: the bytes, for a minute, to a request without a token."""
    site = get_site(request)
    carried = "authorization" in request.headers
    site.download_log.append({"key": key, "port": request.url.port, "authorization": carried})
    if carried:
        return JSONResponse({"error": {"code": "unauthenticated", "message": "The download URL is "
                                       "pre-authenticated: an Authorization header is not accepted."}},
                            status_code=401)
    path, valid_until = site.downloads.get(key, ("", 0.0))
    item = site.files.get(path)
    if item is None or valid_until < time.monotonic():
        return JSONResponse({"error": {"code": "itemNotFound", "message": "The download URL expired."}},
                            status_code=404)
    return Response(item.content, media_type=item.mime_type, headers={"ETag": item.etag})


@router.get("/_sandbox/downloads")
async def sandbox_downloads(request: Request) -> dict[str, Any]:
    """Every request to a download URL: its port and whether it carried an Authorization header."""
    site = get_site(request)
    return {"download_base_url": site.download_base_url, "downloads": site.download_log}


@router.put("/_sandbox/download-host")
async def download_host(request: Request) -> dict[str, Any]:
    site = get_site(request)
    site.same_host_downloads = bool((await request.json()).get("same"))
    return {"same": site.same_host_downloads}


@router.get("/_sandbox/files")
async def sandbox_files(request: Request) -> dict[str, Any]:
    """Every file: path, size, sha256, eTag and how many versions it has had."""
    site = get_site(request)
    return {"site_id": SITE_ID, "folders": sorted(site.folders), "files": [
        {"path": f.path, "id": f.id, "size": len(f.content), "sha256": hashlib.sha256(f.content).hexdigest(),
         "eTag": f.etag, "versions": f.version, "mime_type": f.mime_type}
        for f in sorted(site.files.values(), key=lambda f: f.path)]}


@router.delete("/_sandbox/files")
async def clear_files(request: Request) -> dict[str, Any]:
    get_site(request).clear()
    return {"cleared": True}


@router.post("/_sandbox/revoke-tokens")
async def revoke_tokens(request: Request) -> dict[str, Any]:
    tokens = get_site(request).tokens
    revoked = len(tokens.issued)
    tokens.issued.clear()
    return {"revoked": revoked}


@router.put("/_sandbox/token-lifetime")
async def token_lifetime(request: Request) -> dict[str, Any]:
    seconds = (await request.json()).get("seconds")
    if not isinstance(seconds, int) or seconds < 0:
        raise GraphError(400, "invalidRequest", "seconds must be a non-negative integer")
    get_site(request).tokens.lifetime_s = seconds
    return {"seconds": seconds}

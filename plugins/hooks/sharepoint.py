"""SharePoint document libraries through Microsoft Graph, with app-only (client credentials) auth.

Usage::

    from hooks.sharepoint import SharePointHook

    hook = SharePointHook()                                  # Connection "sharepoint_default"
    item = hook.upload_file("Support/Runbooks", "payments-api.html", html.encode())
    print(item["webUrl"])                                    # uploading the same bytes again is a no-op
    names = [entry["name"] for entry in hook.list_folder("Support/Runbooks")]
    data = hook.download("Support/Runbooks/payments-api.html")

Paths are relative to the site's default document library ("Shared Documents"). Uploads
replace the file at that path (Graph's simple upload, up to 250 MB); when the file already
has the same bytes, nothing is uploaded. The access token is cached until shortly before it
expires; a 401 makes the hook fetch a new token and retry the call once.

The Connection (``http``): host = ``graph.microsoft.com``, login = the app's client id,
password = its client secret; extra ``tenant_id``, ``site`` (``contoso.sharepoint.com:/sites/support``),
``token_url`` (default ``https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token``),
``base_path`` (where ``/v1.0`` lives: the sandbox's ``/graph``), ``timeout``, ``verify``.

References: https://learn.microsoft.com/en-us/graph/api/driveitem-put-content,
https://learn.microsoft.com/en-us/graph/api/site-getbypath,
https://learn.microsoft.com/en-us/graph/api/driveitem-list-children,
https://learn.microsoft.com/en-us/graph/api/driveitem-get-content,
https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection
from hooks.http_client import HttpError, send

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
SIMPLE_UPLOAD_LIMIT = 250 * 1024 * 1024  # larger files need an upload session
PAGE_SIZE = 200
TOKEN_MARGIN_S = 60.0  # renew this long before the token's expiry


def item_path(*parts: str) -> str:
    """A drive path from folder and file parts, each segment percent-encoded for Graph's path syntax."""
    segments = [segment for part in parts for segment in part.strip("/").split("/") if segment]
    for segment in segments:
        if segment in (".", ".."):
            raise ValueError(f"path segment {segment!r} is not allowed in a SharePoint path: {'/'.join(parts)}")
    return "/".join(quote(segment, safe="") for segment in segments)


class SharePointHook(BaseHook):
    """Upload, list and download files in a SharePoint site's document library."""

    conn_name_attr = "sharepoint_conn_id"
    default_conn_name = "sharepoint_default"
    conn_type = "http"
    hook_name = "SharePoint (Microsoft Graph)"

    def __init__(self, *, sharepoint_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sharepoint_conn_id = sharepoint_conn_id
        self._token: str | None = None
        self._token_expires = 0.0

    @cached_property
    def conn_params(self) -> ApiConnection:
        """Graph's root, the app's credentials and the site, read from the Connection on first use."""
        params = api_connection(self.get_connection(self.sharepoint_conn_id), "SharePoint (Microsoft Graph)",
                                needs=("login", "password"))
        missing = [name for name in ("site",) if not params.extra.get(name)]
        if not params.extra.get("token_url") and not params.extra.get("tenant_id"):
            missing.append("tenant_id")
        if missing:
            raise ValueError(f"Connection {self.sharepoint_conn_id!r} needs extra {', '.join(map(repr, missing))} "
                             "for SharePoint (Microsoft Graph)")
        return params

    @property
    def token_url(self) -> str:
        extra = self.conn_params.extra
        return str(extra.get("token_url") or TOKEN_URL.format(tenant=quote(str(extra["tenant_id"]), safe="")))

    @cached_property
    def session(self) -> requests.Session:
        return self.conn_params.json_session()  # Graph calls carry a bearer token each, not session auth

    @property
    def graph_url(self) -> str:
        return f"{self.conn_params.base_url}/v1.0"

    def _fetch_token(self) -> str:
        """A new app-only token (client credentials grant); cached until shortly before it expires."""
        form = {"grant_type": "client_credentials", "client_id": self.conn_params.login,
                "client_secret": self.conn_params.password, "scope": GRAPH_SCOPE}
        try:
            answer = send(self.session, "POST", self.token_url, data=form, timeout=self.conn_params.timeout).json()
        except HttpError as error:
            detail = str(error).partition(f"HTTP {error.status}: ")[2] or str(error)
            raise HttpError("POST", self.token_url, error.status, f"Microsoft identity platform refused the client "
                                                                  f"credentials of Connection "
                                                                  f"{self.sharepoint_conn_id!r}: {detail}") from error
        lifetime = float(answer.get("expires_in", 0))
        self._token = answer["access_token"]
        self._token_expires = time.monotonic() + lifetime - min(TOKEN_MARGIN_S, lifetime / 10)
        return self._token

    def _bearer(self) -> str:
        if self._token is None or time.monotonic() >= self._token_expires:
            return self._fetch_token()
        return self._token

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {self._bearer()}"
            try:
                return send(self.session, method, url, headers=headers, timeout=self.conn_params.timeout, **kwargs)
            except HttpError as error:
                if error.status != 401:
                    raise
                if attempt == 2:
                    detail = str(error).partition("HTTP 401: ")[2]
                    raise HttpError(method, url, 401, f"Graph refused a fresh token of Connection "
                                                      f"{self.sharepoint_conn_id!r}: {detail}") from error
                self._token = None  # expired or revoked: fetch a new one and try once more
        raise AssertionError("unreachable")

    @cached_property
    def site_id(self) -> str:
        """The site's Graph id (``hostname,site-guid,web-guid``), looked up by its path once."""
        site = str(self.conn_params.extra["site"]).strip("/")
        hostname, colon, path = site.partition(":")
        if not colon:
            raise ValueError(f"Connection {self.sharepoint_conn_id!r}: extra 'site' must look like "
                             f"'contoso.sharepoint.com:/sites/support', got {site!r}")
        address = f"{quote(hostname, safe='')}:/{item_path(path)}"
        return self._call("GET", f"{self.graph_url}/sites/{address}").json()["id"]

    def _drive(self, suffix: str) -> str:
        return f"{self.graph_url}/sites/{quote(self.site_id, safe=',')}/drive/{suffix}"

    def get_item(self, path: str) -> dict[str, Any] | None:
        """The driveItem at ``path`` (folder/file), or None when there is none."""
        return self._item(item_path(path))

    def _item(self, encoded_path: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", self._drive(f"root:/{encoded_path}")).json()
        except HttpError as error:
            if error.status == 404:
                return None
            raise

    def upload_file(self, folder: str, filename: str, content: bytes) -> dict[str, Any]:
        """Put ``content`` at ``folder/filename`` (folders are created as needed); the driveItem.

        When the file there already has these bytes (same size, then same downloaded bytes),
        nothing is uploaded and the current item is returned, so its eTag does not change.
        """
        if not filename or "/" in filename:
            raise ValueError(f"filename must be a file name without '/', got {filename!r}")
        if len(content) > SIMPLE_UPLOAD_LIMIT:
            raise ValueError(f"{filename}: {len(content)} bytes is over Graph's simple-upload limit of 250 MB")
        path = item_path(folder, filename)
        current = self._item(path)
        if current is not None and "file" in current and current.get("size") == len(content):
            if self._download(path) == content:
                return current
        return self._call("PUT", self._drive(f"root:/{path}:/content"), data=content,
                          headers={"Content-Type": "application/octet-stream"}).json()

    def list_folder(self, folder: str, *, page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """Every child (files and folders) of ``folder``, following ``@odata.nextLink`` to the end."""
        path = item_path(folder)
        url: str | None = self._drive(f"root:/{path}:/children" if path else "root/children")
        params: dict[str, Any] | None = {"$top": page_size}
        children: list[dict[str, Any]] = []
        while url is not None:
            answer = self._call("GET", url, params=params).json()
            children.extend(answer.get("value", []))
            url, params = answer.get("@odata.nextLink"), None
            if url is not None and not url.startswith(self.graph_url + "/"):
                # The next page must come from the same Graph endpoint: the call carries our token.
                raise ValueError(f"Graph sent a next page outside {self.graph_url}: {url}")
        return children

    def download(self, path: str) -> bytes:
        """The bytes of the file at ``path`` (HttpError 404 when there is none)."""
        return self._download(item_path(path))

    def _download(self, encoded_path: str) -> bytes:
        """Ask Graph for the content, then fetch the pre-authenticated URL it redirects to, without our token.

        Graph answers 302 to a short-lived download URL on another host that "doesn't require an
        Authorization header" (driveitem-get-content). requests would drop the header only when
        the host or port changes, so the redirect is followed here, from a session that has no
        token at all, wherever it points.
        """
        answer = self._call("GET", self._drive(f"root:/{encoded_path}:/content"), allow_redirects=False)
        if not answer.is_redirect:
            return answer.content
        location = requests.compat.urljoin(answer.url, answer.headers["Location"])
        return send(self.download_session, "GET", location, timeout=self.conn_params.timeout).content

    @cached_property
    def download_session(self) -> requests.Session:
        """For pre-authenticated download URLs: no Authorization, no JSON Accept, the Connection's TLS check."""
        session = requests.Session()
        session.verify = self.conn_params.verify
        return session

    def test_connection(self) -> tuple[bool, str]:
        try:
            site_id = self.site_id
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Found site {self.conn_params.extra['site']} ({site_id})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["port"],
            "relabeling": {"host": "Graph host", "login": "Client id", "password": "Client secret"},
            "placeholders": {
                "host": "graph.microsoft.com",
                "schema": "https",
                "extra": '{"tenant_id": "...", "site": "contoso.sharepoint.com:/sites/support", "timeout": 30}',
            },
        }

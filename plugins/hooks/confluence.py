"""Confluence Cloud pages and attachment lists (REST API v2) and uploads (v1), published idempotently.

Usage::

    from hooks.confluence import ConfluenceHook

    hook = ConfluenceHook()                      # Connection "confluence_default"
    page = hook.publish_page("Runbook: payments-api", storage_xhtml, parent_title="Runbooks")
    hook.attach_file(page.id, "evidence.csv", data, "text/csv")
    print(page.url, page.version)

``publish_page`` takes the body in storage format (XHTML) **already escaped by the caller**
(render it with an autoescaping Jinja template). It creates the page, or updates the page with
that title in place; an unchanged body makes no new version. ``attach_file`` uploads a new
version of an attachment only when its bytes changed. Running either twice changes nothing.

The Connection (``http``): host = the site with scheme (``https://acme.atlassian.net``; the
sandbox: ``http://HOST:PORT/confluence``), login = the account's email, password = an API token
(Basic auth); extra ``space`` (the default space key), ``timeout`` (seconds), ``verify`` (TLS).

Pages go through ``/wiki/api/v2/pages`` (https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-page/;
a space is named by its id there, read once from ``/wiki/api/v2/spaces?keys=``): Atlassian
deprecated the v1 content endpoints in favour of v2. A page's attachments are listed through v2
(https://developer.atlassian.com/cloud/confluence/rest/v2/api-group-attachment/); they are uploaded
through v1, which has the only upload
(https://developer.atlassian.com/cloud/confluence/rest/v1/api-group-content---attachments/).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

from hooks.api_connection import ApiConnection, api_connection
from hooks.http_client import HttpError, send

PAGE_SIZE = 100
# Written into the version message of a page and the comment of an attachment: Confluence may
# re-serialise a storage-format body, so "unchanged" is also recognised by the hash of what we sent.
HASH_MARK = "prep-support sha256:"


@dataclass(frozen=True)
class Page:
    """A Confluence page as publishing reports it: its id, title, current version and browser URL."""

    id: str
    title: str
    version: int
    url: str


def body_digest(body: str | bytes) -> str:
    return hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()


class ConfluenceHook(BaseHook):
    """Find, publish (create or update in place) and attach files to Confluence pages."""

    conn_name_attr = "confluence_conn_id"
    default_conn_name = "confluence_default"
    conn_type = "http"
    hook_name = "Confluence"

    def __init__(self, *, confluence_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.confluence_conn_id = confluence_conn_id
        self._space_ids: dict[str, str] = {}

    @cached_property
    def conn_params(self) -> ApiConnection:
        """The site's URL and credentials, read from the Connection on first use."""
        return api_connection(self.get_connection(self.confluence_conn_id), "Confluence", needs=("login", "password"))

    @property
    def default_space(self) -> str:
        """The Connection's extra ``space``: where pages go when no space is given."""
        space = str(self.conn_params.extra.get("space") or "").strip()
        if not space:
            raise ValueError(f"Connection {self.confluence_conn_id!r} needs extra 'space' (a space key) for "
                             "Confluence, or pass space= explicitly")
        return space

    @cached_property
    def session(self) -> requests.Session:
        return self.conn_params.json_session(basic_auth=True)

    @property
    def wiki_url(self) -> str:
        """``https://acme.atlassian.net/wiki``: answer links (``webui``, ``next``, ``download``) are relative to it."""
        return f"{self.conn_params.base_url}/wiki"

    def _api(self, path: str) -> str:
        return f"{self.wiki_url}/rest/api/{path}"

    def _v2(self, path: str) -> str:
        return f"{self.wiki_url}/api/v2/{path}"

    def space_id(self, space: str) -> str:
        """The id v2 names the space by; ValueError naming a key the site does not have."""
        if space not in self._space_ids:
            found = self._call("GET", self._v2("spaces"), params={"keys": space}).json()["results"]
            match = next((found_space for found_space in found if found_space.get("key") == space), None)
            if match is None:
                raise ValueError(f"Confluence at {self.wiki_url} (Connection {self.confluence_conn_id!r}) has no "
                                 f"space with key {space!r}")
            self._space_ids[space] = str(match["id"])
        return self._space_ids[space]

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return send(self.session, method, url, timeout=self.conn_params.timeout, **kwargs)
        except HttpError as error:
            if error.status in (401, 403) and "XSRF" not in str(error):
                detail = str(error).partition(f"HTTP {error.status}: ")[2]
                raise HttpError(method, url, error.status, f"Confluence refused the credentials of Connection "
                                                           f"{self.confluence_conn_id!r}: {detail}") from error
            raise

    def _v2_pages(self, params: dict[str, Any], path: str = "pages") -> list[dict[str, Any]]:
        """Every item of a v2 list (pages by default), following the ``_links.next`` cursor (relative to the site)."""
        results: list[dict[str, Any]] = []
        url: str | None = self._v2(path)
        query: dict[str, Any] | None = {"limit": PAGE_SIZE, **params}
        while url is not None:
            answer = self._call("GET", url, params=query).json()
            results.extend(answer.get("results", []))
            following = (answer.get("_links") or {}).get("next")
            # v2's next link starts with /wiki; joined onto our own site URL, never elsewhere.
            url, query = (f"{self.conn_params.base_url}{following}" if following else None), None
        return results

    def _page(self, content: dict[str, Any]) -> Page:
        return Page(id=str(content["id"]), title=content["title"], version=int(content["version"]["number"]),
                    url=f"{self.wiki_url}{content['_links']['webui']}")

    def _find(self, title: str, space: str) -> dict[str, Any] | None:
        found = self._v2_pages({"space-id": self.space_id(space), "title": title, "status": "current",
                                "body-format": "storage"})
        return next((content for content in found if content.get("title") == title), None)

    def find_page(self, title: str, *, space: str | None = None) -> Page | None:
        """The page with exactly this title in the space (default: the Connection's), or None."""
        found = self._find(title, space or self.default_space)
        return None if found is None else self._page(found)

    def page_body(self, page: Page) -> str:
        """The page's current body in storage format."""
        content = self._call("GET", self._v2(f"pages/{page.id}"), params={"body-format": "storage"}).json()
        return content["body"]["storage"]["value"]

    def publish_page(self, title: str, body: str, *, space: str | None = None,
                     parent_title: str | None = None) -> Page:
        """Create the page or update it in place by title; no new version when the body is unchanged.

        ``body`` is storage format given by the caller, already escaped. A missing parent page is
        created empty first. Two publishers racing on the same title end with one page: the
        create that loses (400, the title exists) finds the winner's page and updates it.
        """
        space = space or self.default_space
        parent_id = self._ensure_page(parent_title, space, None).id if parent_title else None
        return self._publish(title, body, space, parent_id)

    def _ensure_page(self, title: str, space: str, parent_id: str | None) -> Page:
        existing = self._find(title, space)
        return self._page(existing) if existing is not None else self._create(title, "", space, parent_id)

    def _publish(self, title: str, body: str, space: str, parent_id: str | None) -> Page:
        existing = self._find(title, space)
        if existing is None:
            return self._create(title, body, space, parent_id)
        if _unchanged(existing, body, parent_id):
            return self._page(existing)
        try:
            return self._update(existing, body, parent_id)
        except HttpError as error:
            if error.status != 409:
                raise
            # Someone saved a version in between: start again from the current one, once.
            current = self._find(title, space)
            if current is None or _unchanged(current, body, parent_id):
                return self._page(current) if current else self._create(title, body, space, parent_id)
            return self._update(current, body, parent_id)

    def _create(self, title: str, body: str, space: str, parent_id: str | None) -> Page:
        # v2 takes no version message on create: the first version is recognised by its body.
        payload: dict[str, Any] = {"spaceId": self.space_id(space), "status": "current", "title": title,
                                   "body": {"representation": "storage", "value": body}}
        if parent_id:
            payload["parentId"] = parent_id
        try:
            return self._page(self._call("POST", self._v2("pages"), json=payload).json())
        except HttpError as error:
            if error.status is None or error.status >= 500:
                # The answer was lost: the page may have been made. Look before anyone creates it again.
                made = self._find(title, space)
                if made is None:
                    raise
                return self._page(made) if _unchanged(made, body, parent_id) else self._update(made, body, parent_id)
            if error.status != 400 or "already exists" not in str(error):
                raise
        # A concurrent publisher created it first: update that page instead of making a second one.
        existing = self._find(title, space)
        if existing is None:
            raise HttpError("POST", self._v2("pages"), 400, f"Confluence says {title!r} exists in space "
                                                            f"{space} but no page with that title can be found")
        if _unchanged(existing, body, parent_id):
            return self._page(existing)
        return self._update(existing, body, parent_id)

    def _update(self, existing: dict[str, Any], body: str, parent_id: str | None) -> Page:
        payload: dict[str, Any] = {
            "id": str(existing["id"]), "status": "current", "title": existing["title"],
            "body": {"representation": "storage", "value": body},
            "version": {"number": int(existing["version"]["number"]) + 1,
                        "message": f"{HASH_MARK}{body_digest(body)}"},
        }
        if parent_id:
            payload["parentId"] = parent_id
        return self._page(self._call("PUT", self._v2(f"pages/{existing['id']}"), json=payload).json())

    def attach_file(self, page_id: str, filename: str, content: bytes,
                    content_type: str = "application/octet-stream") -> str:
        """Attach ``content`` to the page as ``filename``; the attachment id.

        Uploads a new version only when the bytes differ from the current one (the sha256 we
        keep in the attachment's comment, or the downloaded bytes for a file someone else
        uploaded); identical bytes send no request that changes anything.
        """
        return self._attach(page_id, filename, content, content_type, after_race=False)

    def _attach(self, page_id: str, filename: str, content: bytes, content_type: str, *, after_race: bool) -> str:
        digest = body_digest(content)
        existing = self._attachment(page_id, filename)
        if existing is not None and self._same_bytes(existing, digest):
            return str(existing["id"])
        files = {"file": (filename, content, content_type)}
        form = {"comment": f"{HASH_MARK}{digest}", "minorEdit": "true"}
        headers = {"X-Atlassian-Token": "no-check"}  # Confluence refuses multipart uploads without it (XSRF)
        if existing is not None:
            url = self._api(f"content/{page_id}/child/attachment/{existing['id']}/data")
            return str(self._call("POST", url, files=files, data=form, headers=headers).json()["id"])
        try:
            answer = self._call("POST", self._api(f"content/{page_id}/child/attachment"), files=files, data=form,
                                headers=headers).json()
            return str(answer["results"][0]["id"])
        except HttpError as error:
            if after_race or error.status != 400 or "same file name" not in str(error):
                raise
        # Someone attached the same file name in between: add our bytes as its next version (if they differ).
        return self._attach(page_id, filename, content, content_type, after_race=True)

    def _attachment(self, page_id: str, filename: str) -> dict[str, Any] | None:
        found = self._v2_pages({"filename": filename}, path=f"pages/{page_id}/attachments")
        return next((a for a in found if a.get("title") == filename), None)

    def _same_bytes(self, attachment: dict[str, Any], digest: str) -> bool:
        comment = str(attachment.get("comment") or "")
        if comment.startswith(HASH_MARK):
            return comment.removeprefix(HASH_MARK).strip() == digest
        download = attachment.get("downloadLink") or (attachment.get("_links") or {}).get("download")
        if not download:
            return False
        return body_digest(self._call("GET", f"{self.wiki_url}{download}").content) == digest

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", self._v2("pages"), params={"space-id": self.space_id(self.default_space),
                                                          "limit": 1})
        except Exception as error:  # the UI shows the reason instead of a stack trace
            return False, str(error)
        return True, f"Read space {self.default_space} at {self.wiki_url} as {self.conn_params.login}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Site URL", "login": "Account email", "password": "API token"},
            "placeholders": {
                "host": "https://acme.atlassian.net",
                "login": "prep-support@acme.com",
                "extra": '{"space": "SUP", "timeout": 30}',
            },
        }


def _unchanged(content: dict[str, Any], body: str, parent_id: str | None) -> bool:
    """The stored page already has this body (verbatim, or by the hash we sent with it) under this parent."""
    stored = ((content.get("body") or {}).get("storage") or {}).get("value")
    message = str((content.get("version") or {}).get("message") or "")
    same_body = stored == body or message == f"{HASH_MARK}{body_digest(body)}"
    same_parent = parent_id is None or str(content.get("parentId") or "") == parent_id
    return same_body and same_parent

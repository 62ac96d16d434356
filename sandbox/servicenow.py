"""ServiceNow stand-in: the Table API for ``incident`` and the Attachment API's upload.

Shapes follow ServiceNow's REST API reference:

- Table API (``GET/POST /api/now/table/{table}``, ``GET/PUT/PATCH /api/now/table/{table}/{sys_id}``,
  ``sysparm_query``/``sysparm_limit``/``sysparm_offset``/``sysparm_fields``, the ``Link`` and
  ``X-Total-Count`` headers): https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/concept/c_TableAPI.html
- Attachment API (``POST /api/now/attachment/file``):
  https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/concept/c_AttachmentAPI.html
- Encoded query strings:
  https://docs.servicenow.com/bundle/vancouver-platform-user-interface/page/use/using-lists/concept/c_EncodedQueryStrings.html
- The default priority lookup from impact and urgency:
  https://docs.servicenow.com/bundle/vancouver-it-service-management/page/product/incident-management/reference/r_PrioritizationOfIncidents.html

Every value is a string, as the Table API returns them; reference fields (``caller_id``,
``assignment_group``) come back as plain values, as with ``sysparm_exclude_reference_link=true``.
Journal fields (``work_notes``, ``comments``) read back empty, as in ServiceNow: each write
appends an entry to the incident's journal instead. Errors use ServiceNow's shape
``{"error": {"message", "detail"}, "status": "failure"}``. Unlike ServiceNow, a query term
outside the supported subset (``field=value``, ``field!=value``, ``ORDERBY``/``ORDERBYDESC``
joined by ``^``) is refused with 400 rather than ignored, so a hook's typo cannot match every row.

Access control as an instance grants it out of the box (Access Control Lists,
https://www.servicenow.com/docs/r/australia/platform-security/access-control/exploring-access-control-list.html):
two users, ``prep-support`` with the ``itil`` role and ``admin`` with ``admin``. Only ``admin``
reads the Journal Entries table ``sys_journal_field``; for anyone else the read ACL denies every
row, and the Table API answers 403 ``User Not Authorized`` / ``N records constrained due to ACL
restrictions`` (as an instance answers it:
https://www.servicenow.com/community/itsm-forum/rest-api-incident-sla-is-not-accessible/m-p/812907),
or an empty ``result`` when nothing matched. An ``itil`` user reads the journal through the
incident's own journal field instead: with ``sysparm_display_value=true`` (Table API
parameters, above) ``work_notes``/``comments`` come back as their display value, every entry
``"<yyyy-MM-dd HH:mm:ss> - <user's name> (Work notes)\n<text>\n\n"``, newest first
(journal fields: https://www.servicenow.com/docs/r/australia/platform-administration/c_JournalFields.html).
``sys_choice`` is readable by both, and holds the incident's resolution codes (``close_code``) of a
current release: "Solution provided", "Workaround provided", ... active, the legacy
"Solved (Permanently)" family ``inactive=true``
(https://www.servicenow.com/docs/r/it-service-management/incident-management/resolve-and-close-an-incident.html).
Like the instance, the Table API stores a choice value it does not know; it is the client's to check.

For tests: ``GET /servicenow/_sandbox/incidents`` lists incidents with their journal and
attachments; ``DELETE`` clears them (numbering starts again at INC0010001).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.api_route import SystemRoute

PREFIX = "/servicenow"
SANDBOX_USER = "prep-support"
SANDBOX_PASSWORD = "sandbox-snow-password"
ADMIN_USER, ADMIN_PASSWORD = "admin", "sandbox-snow-admin-password"
USERS = {SANDBOX_USER: (SANDBOX_PASSWORD, "itil", "Prep Support"), ADMIN_USER: (ADMIN_PASSWORD, "admin",
                                                                              "System Administrator")}
JOURNAL_LABELS = {"work_notes": "Work notes", "comments": "Additional comments"}
# sys_choice rows of incident.close_code: (value, inactive)
CLOSE_CODES = (
    ("Duplicate", False), ("Known error", False), ("No resolution provided", False), ("Resolved by caller", False),
    ("Resolved by change", False), ("Resolved by problem", False), ("Resolved by request", False),
    ("Solution provided", False), ("Workaround provided", False), ("User error", False),
    ("Solved (Work Around)", True), ("Solved (Permanently)", True), ("Solved Remotely (Work Around)", True),
    ("Solved Remotely (Permanently)", True), ("Not Solved (Not Reproducible)", True),
    ("Not Solved (Too Costly)", True), ("Closed/Resolved by Caller", True),
)
TABLE = "incident"
FIRST_NUMBER = 10001
DEFAULT_LIMIT = 10000  # the Table API's default sysparm_limit
STATE_RESOLVED, STATE_CLOSED, STATE_CANCELED = "6", "7", "8"
INACTIVE_STATES = {STATE_RESOLVED, STATE_CLOSED, STATE_CANCELED}
JOURNAL_FIELDS = ("work_notes", "comments")
SYSTEM_FIELDS = {"sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count"}
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
QUERY_TERM = re.compile(r"^([a-z_][a-z0-9_.]*)(!=|=)(.*)$", re.DOTALL)


class ServiceNowError(Exception):
    """An error answered in ServiceNow's shape."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "detail": self.detail}, "status": "failure"},
                            status_code=self.status)


def error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault, in ServiceNow's error shape."""
    return {"error": {"message": f"Injected fault: HTTP {status}", "detail": "sandbox fault injection"},
            "status": "failure"}


def now() -> str:
    """A timestamp as the Table API writes it (UTC, ``YYYY-MM-DD HH:MM:SS``)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def priority(impact: str, urgency: str) -> str:
    """ServiceNow's default priority matrix: 1 (Critical) for impact 1 + urgency 1 ... 5 (Planning) for 3 + 3."""
    try:
        impact_level, urgency_level = int(impact), int(urgency)
    except ValueError:
        return "5"
    return str(min(5, max(1, impact_level + urgency_level - 1)))


def field_value(value: Any) -> str:
    """A JSON value as the Table API stores it: everything is a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class Incident:
    seq: int
    fields: dict[str, str]
    journal: list[dict[str, str]] = field(default_factory=list)
    attachments: list[dict[str, str]] = field(default_factory=list)


class ServiceNow:
    """The sandbox instance's incidents."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.next_number = FIRST_NUMBER
        self.seq = 0

    def get(self, sys_id: str) -> Incident:
        incident = self.incidents.get(sys_id)
        if incident is None:
            raise ServiceNowError(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        return incident

    def create(self, payload: dict[str, Any], user: str) -> Incident:
        stamp = now()
        fields = {
            "sys_id": secrets.token_hex(16),
            "number": f"INC{self.next_number:07d}",
            "state": "1",
            "incident_state": "1",
            "active": "true",
            "impact": "3",
            "urgency": "3",
            "short_description": "",
            "description": "",
            "correlation_id": "",
            "assignment_group": "",
            "caller_id": "",
            "close_code": "",
            "close_notes": "",
            "opened_at": stamp,
            "resolved_at": "",
            "sys_created_on": stamp,
            "sys_created_by": user,
            "sys_updated_on": stamp,
            "sys_updated_by": user,
            "sys_mod_count": "0",
        }
        incident = Incident(seq=self.seq + 1, fields=fields)
        self._apply(incident, payload, user, stamp)
        self.next_number += 1
        self.seq += 1
        self.incidents[incident.fields["sys_id"]] = incident
        return incident

    def update(self, sys_id: str, payload: dict[str, Any], user: str) -> Incident:
        incident = self.get(sys_id)
        stamp = now()
        self._apply(incident, payload, user, stamp)
        incident.fields["sys_updated_on"], incident.fields["sys_updated_by"] = stamp, user
        incident.fields["sys_mod_count"] = str(int(incident.fields["sys_mod_count"]) + 1)
        return incident

    def _apply(self, incident: Incident, payload: dict[str, Any], user: str, stamp: str) -> None:
        changes = {name: field_value(value) for name, value in payload.items() if name not in SYSTEM_FIELDS}
        bad = sorted(name for name in changes if not FIELD_NAME.match(name))
        if bad:
            raise ServiceNowError(400, "Invalid field name", f"Not a field of {TABLE}: {', '.join(bad)}")
        merged = {**incident.fields, **{k: v for k, v in changes.items() if k not in JOURNAL_FIELDS}}
        state = merged.get("state", "1")
        if state in (STATE_RESOLVED, STATE_CLOSED) and merged.get("state") != incident.fields.get("state"):
            missing = [f"{label} ({name})" for name, label in (("close_code", "Resolution code"),
                                                                ("close_notes", "Resolution notes"))
                       if not merged.get(name)]
            if missing:
                raise ServiceNowError(400, "Data Policy Exception",
                                      f"The following fields are mandatory: {', '.join(missing)}")
            merged["resolved_at"] = merged.get("resolved_at") or stamp
        merged["incident_state"] = state
        merged["active"] = "false" if state in INACTIVE_STATES else "true"
        # Priority is looked up from impact and urgency, never set directly.
        merged["priority"] = priority(merged["impact"], merged["urgency"])
        incident.fields = merged
        for name in JOURNAL_FIELDS:
            if changes.get(name):
                incident.journal.append({"element": name, "value": changes[name], "sys_created_on": stamp,
                                         "sys_created_by": user})

    def query(self, encoded: str) -> list[Incident]:
        """The incidents an encoded query selects, in its order."""
        conditions: list[tuple[str, str, str]] = []
        order: list[tuple[str, bool]] = []
        for term in filter(None, encoded.split("^")):
            if term.startswith("ORDERBYDESC"):
                order.append((term.removeprefix("ORDERBYDESC"), True))
            elif term.startswith("ORDERBY"):
                order.append((term.removeprefix("ORDERBY"), False))
            elif matched := QUERY_TERM.match(term):
                conditions.append(matched.groups())
            else:
                raise ServiceNowError(400, "Unsupported query term",
                                      f"{term!r}: the sandbox supports field=value, field!=value, "
                                      "ORDERBYfield and ORDERBYDESCfield joined by ^")
        rows = [incident for incident in self.incidents.values()
                if all((incident.fields.get(name, "") == value) == (op == "=") for name, op, value in conditions)]
        # Stable sorts from the least significant key; ties follow creation order in the primary direction,
        # so ORDERBYDESCsys_created_on puts the newest first even within one second.
        rows.sort(key=lambda incident: incident.seq, reverse=bool(order) and order[0][1])
        for name, descending in reversed(order):
            rows.sort(key=lambda incident: incident.fields.get(name, ""), reverse=descending)
        return rows

    def attach(self, table_sys_id: str, file_name: str, content: bytes, content_type: str, user: str,
               base_url: str) -> dict[str, str]:
        incident = self.get(table_sys_id)
        stamp, sys_id = now(), secrets.token_hex(16)
        metadata = {
            "sys_id": sys_id,
            "table_name": TABLE,
            "table_sys_id": table_sys_id,
            "file_name": file_name,
            "content_type": content_type,
            "size_bytes": str(len(content)),
            "size_compressed": str(len(content)),
            "compressed": "false",
            "hash": hashlib.sha256(content).hexdigest(),
            "state": "available",
            "download_link": f"{base_url}{PREFIX}/api/now/attachment/{sys_id}/file",
            "image_width": "",
            "image_height": "",
            "sys_created_on": stamp,
            "sys_created_by": user,
            "sys_updated_on": stamp,
            "sys_updated_by": user,
            "sys_mod_count": "0",
        }
        incident.attachments.append(metadata)
        return metadata


def journal_display(incident: Incident, element: str) -> str:
    """A journal field's display value: its entries newest first, each under a stamp, author and label."""
    return "".join(f"{entry['sys_created_on']} - {USERS[entry['sys_created_by']][2]} ({JOURNAL_LABELS[element]})\n"
                   f"{entry['value']}\n\n" for entry in reversed(incident.journal) if entry["element"] == element)


def record(incident: Incident, fields: str | None, display_value: bool = False) -> dict[str, str]:
    """An incident as the Table API returns it, limited to ``sysparm_fields`` when given.

    With ``sysparm_display_value=true`` journal fields show their entries; other values are
    returned as stored (the sandbox keeps no labels for them).
    """
    journals = {name: journal_display(incident, name) if display_value else "" for name in JOURNAL_FIELDS}
    full = {**incident.fields, **journals}
    if not fields:
        return full
    return {name: full.get(name, "") for name in (part.strip() for part in fields.split(",")) if name}


def authenticated_user(request: Request) -> str:
    """The Basic-auth user, or a 401 in ServiceNow's shape."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    if scheme.lower() != "basic" or user not in USERS or USERS[user][0] != password:
        raise ServiceNowError(401, "User Not Authenticated", "Required to provide Auth information")
    return user


class ServiceNowRoute(SystemRoute):
    """Answers :class:`ServiceNowError` in ServiceNow's shape and checks Basic auth on the API."""

    error = ServiceNowError

    def authenticate(self, request: Request) -> None:
        request.state.servicenow_user = authenticated_user(request)

    def answer(self, error: ServiceNowError) -> Response:
        response = error.response()
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="Service-now"'
        return response


router = APIRouter(prefix=PREFIX, tags=["servicenow"], route_class=ServiceNowRoute)


def get_servicenow(request: Request) -> ServiceNow:
    return request.app.state.servicenow


def _check_table(table: str) -> None:
    if table != TABLE:
        raise ServiceNowError(400, f"Invalid table {table}", None)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise ServiceNowError(400, "Exception while reading request",
                              f"The payload is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ServiceNowError(400, "Exception while reading request", "The payload must be a JSON object")
    return payload


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw in (None, "") else int(raw)
    except ValueError:
        raise ServiceNowError(400, f"Invalid {name}", f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ServiceNowError(400, f"Invalid {name}", f"{name} must not be negative")
    return value


def _links(request: Request, offset: int, limit: int, total: int) -> str | None:
    """The ``Link`` header ServiceNow sends when the result spans more than one page."""
    if limit <= 0 or (offset == 0 and total <= limit):
        return None
    last = max(0, (total - 1) // limit * limit)
    pages = [("first", 0)]
    if offset > 0:
        pages.append(("prev", max(0, offset - limit)))
    if offset + limit < total:
        pages.append(("next", offset + limit))
    pages.append(("last", last))
    url = request.url
    return ",".join(
        f'<{url.include_query_params(sysparm_offset=start, sysparm_limit=limit)}>;rel="{rel}"' for rel, start in pages
    )


@router.get("/api/now/table/sys_journal_field")
async def list_journal(request: Request) -> dict[str, Any]:
    """Journal entries (work notes, comments) as ServiceNow keeps them: the ``sys_journal_field`` table.

    Journal fields read back empty on the incident itself; clients read this table instead,
    filtered by ``element_id=<incident sys_id>`` and optionally ``element=work_notes``
    (https://docs.servicenow.com/bundle/washingtondc-platform-administration/page/administer/field-administration/concept/c_JournalFields.html).
    """
    wanted: dict[str, str] = {}
    for term in filter(None, request.query_params.get("sysparm_query", "").split("^")):
        name, equals, value = term.partition("=")
        if not equals or name not in ("element_id", "element", "name") or "!" in name:
            raise ServiceNowError(400, "Invalid query", f"unsupported sys_journal_field query term {term!r}")
        wanted[name] = value
    if "element_id" not in wanted:
        raise ServiceNowError(400, "Invalid query", "sys_journal_field queries need element_id=<sys_id>")
    incident = get_servicenow(request).get(wanted["element_id"])
    entries = [
        {"element_id": wanted["element_id"], "name": TABLE, "element": entry["element"], "value": entry["value"],
         "sys_created_on": entry["sys_created_on"], "sys_created_by": entry["sys_created_by"]}
        for entry in incident.journal
        if wanted.get("element", entry["element"]) == entry["element"]
    ]
    if entries and USERS[request.state.servicenow_user][1] != "admin":
        raise ServiceNowError(403, "User Not Authorized", f"{len(entries)} records constrained due to ACL restrictions")
    return {"result": entries}


@router.get("/api/now/table/sys_choice")
async def list_choices(request: Request) -> dict[str, Any]:
    """Choice list entries of incident.close_code: ``name=incident^element=close_code[^inactive=false]``."""
    wanted: dict[str, str] = {}
    for term in filter(None, request.query_params.get("sysparm_query", "").split("^")):
        name, equals, value = term.partition("=")
        if not equals or name not in ("name", "element", "inactive", "language"):
            raise ServiceNowError(400, "Invalid query", f"unsupported sys_choice query term {term!r}")
        wanted[name] = value
    if (wanted.get("name"), wanted.get("element")) != (TABLE, "close_code"):
        raise ServiceNowError(400, "Invalid query", "the sandbox keeps the choices of incident.close_code only")
    rows = [{"name": TABLE, "element": "close_code", "value": value, "label": value, "language": "en",
             "inactive": field_value(inactive), "sequence": str(index)}
            for index, (value, inactive) in enumerate(CLOSE_CODES)]
    rows = [row for row in rows if all(row[name] == value for name, value in wanted.items())]
    fields = [part for part in request.query_params.get("sysparm_fields", "").split(",") if part]
    return {"result": [{name: row.get(name, "") for name in fields} if fields else row for row in rows]}


@router.get("/api/now/table/{table}")
async def list_records(request: Request, table: str) -> Response:
    """Records matching ``sysparm_query``, one page of them, with ``Link`` and ``X-Total-Count``."""
    _check_table(table)
    params = request.query_params
    rows = get_servicenow(request).query(params.get("sysparm_query", ""))
    offset = _int_param(request, "sysparm_offset", 0)
    limit = _int_param(request, "sysparm_limit", DEFAULT_LIMIT)
    page = rows[offset:offset + limit]
    response = JSONResponse({"result": [record(incident, params.get("sysparm_fields")) for incident in page]})
    response.headers["X-Total-Count"] = str(len(rows))
    if link := _links(request, offset, limit, len(rows)):
        response.headers["Link"] = link
    return response


@router.post("/api/now/table/{table}", status_code=201)
async def create_record(request: Request, table: str) -> JSONResponse:
    """Insert an incident; 201 with the new record."""
    _check_table(table)
    incident = get_servicenow(request).create(await _json_object(request), request.state.servicenow_user)
    location = f"{str(request.base_url).rstrip('/')}{PREFIX}/api/now/table/{TABLE}/{incident.fields['sys_id']}"
    return JSONResponse({"result": record(incident, request.query_params.get("sysparm_fields"))},
                        status_code=201, headers={"Location": location})


@router.get("/api/now/table/{table}/{sys_id}")
async def get_record(request: Request, table: str, sys_id: str) -> dict[str, Any]:
    """One incident by sys_id."""
    _check_table(table)
    incident = get_servicenow(request).get(sys_id)
    display = request.query_params.get("sysparm_display_value", "false").lower()
    if display not in ("true", "false"):
        raise ServiceNowError(400, "Invalid sysparm_display_value", "the sandbox answers true or false")
    return {"result": record(incident, request.query_params.get("sysparm_fields"), display == "true")}


@router.api_route("/api/now/table/{table}/{sys_id}", methods=["PUT", "PATCH"])
async def update_record(request: Request, table: str, sys_id: str) -> dict[str, Any]:
    """Change the fields sent; journal fields append; resolving needs close_code and close_notes."""
    _check_table(table)
    incident = get_servicenow(request).update(sys_id, await _json_object(request), request.state.servicenow_user)
    return {"result": record(incident, request.query_params.get("sysparm_fields"))}


@router.get("/api/now/attachment")
async def list_attachments(request: Request) -> dict[str, Any]:
    """Attachment metadata of a record, ``sysparm_query=table_sys_id=<sys_id>`` (Attachment API GET /now/attachment)."""
    term = request.query_params.get("sysparm_query", "")
    name, _, sys_id = term.partition("=")
    if name != "table_sys_id" or not sys_id or "^" in sys_id:
        raise ServiceNowError(400, "Invalid query", "the sandbox lists attachments by table_sys_id=<sys_id> only")
    return {"result": list(get_servicenow(request).get(sys_id).attachments)}


@router.post("/api/now/attachment/file", status_code=201)
async def upload_attachment(request: Request) -> JSONResponse:
    """Attach the raw request body to a record; 201 with the attachment's metadata."""
    params = request.query_params
    for name in ("table_name", "table_sys_id", "file_name"):
        if not params.get(name):
            raise ServiceNowError(400, f"Missing parameter: {name}", None)
    _check_table(params["table_name"])
    content_type = request.headers.get("content-type")
    if not content_type:
        raise ServiceNowError(400, "Content-Type header is required", "Specify the file's content type")
    base_url = str(request.base_url).rstrip("/")
    metadata = get_servicenow(request).attach(params["table_sys_id"], params["file_name"], await request.body(),
                                              content_type, request.state.servicenow_user, base_url)
    return JSONResponse({"result": metadata}, status_code=201,
                        headers={"Location": f"{base_url}{PREFIX}/api/now/attachment/{metadata['sys_id']}"})


@router.get("/_sandbox/incidents")
async def sandbox_incidents(request: Request) -> dict[str, Any]:
    """Every incident with its journal and attachments, oldest first."""
    return {"incidents": [{**record(incident, None), "journal": incident.journal, "attachments": incident.attachments}
                          for incident in get_servicenow(request).incidents.values()]}


@router.delete("/_sandbox/incidents")
async def clear_incidents(request: Request) -> dict[str, Any]:
    """Forget every incident; numbering starts again at INC0010001."""
    get_servicenow(request).clear()
    return {"cleared": True}

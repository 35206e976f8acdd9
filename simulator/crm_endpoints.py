"""The generic-CRM endpoints (integrations, entity schema, entity upload, request status).

Behaves like Gong's generic CRM API: one integration per company (409 on a second), an int64
integration id above 2**53 (a client that parses it as a float truncates it), full custom-field schemas
per object type, line-delimited JSON uploads as multipart `dataFile`, 409 on a reused clientRequestId,
and asynchronous processing that moves PENDING -> IN_PROGRESS -> DONE/FAILED one step per status poll
(deterministic: no wall clock). Processing validates every line the way Gong documents it and reports
line errors; valid lines land in a store that `GET /v2/crm/entities` reads back.

Test hooks live on `sim.crm` (a `CrmStore`): `fail_next_upload` makes the next upload FAILED,
`hold` keeps requests IN_PROGRESS, `entities`/`schemas`/`uploads` show what arrived.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulator.clock import parse_iso

if TYPE_CHECKING:
    from simulator.server import GongSimulator

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
JSON = dict[str, Any]

OBJECT_TYPES = ("ACCOUNT", "CONTACT", "DEAL", "LEAD", "BUSINESS_USER", "STAGE")
SCHEMA_OBJECT_TYPES = ("ACCOUNT", "CONTACT", "DEAL", "LEAD")
FIELD_TYPES = ("DATE", "DATETIME", "NUMBER", "PERCENT", "CURRENCY", "ID", "URL", "STRING", "BOOLEAN",
               "PHONENUMBER", "EMAILADDRESS", "PICKLIST", "REFERENCE", "STRINGARRAY")
REFERENCE_TARGETS = ("ACCOUNT", "CONTACT", "DEAL", "LEAD", "USER")
# Mandatory fields of a line that is not a deletion, besides objectId, modifiedDate and isDeleted.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "ACCOUNT": ("url", "name"),
    "CONTACT": ("url", "accountId"),
    "DEAL": ("url", "name", "accountId", "ownerId", "stage", "status", "closeDate", "amount"),
    "LEAD": ("url",),
    "BUSINESS_USER": ("url", "emailAddress"),
    "STAGE": ("url", "name"),
}
# Gong's standard fields per object type, besides objectId, modifiedDate and isDeleted.
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "ACCOUNT": ("url", "name", "domains", "ownerId"),
    "CONTACT": ("url", "accountId", "firstName", "lastName", "emailAddress", "phoneNumber", "title", "ownerId"),
    "DEAL": ("url", "name", "accountId", "ownerId", "stage", "status", "closeDate", "amount"),
    "LEAD": ("url", "firstName", "lastName", "emailAddress", "phoneNumber", "title", "company", "ownerId",
             "convertedToAccountId", "convertedToContactId", "convertedToDealId"),
    "BUSINESS_USER": ("url", "emailAddress", "firstName", "lastName", "title"),
    "STAGE": ("url", "name", "sortOrder", "probability"),
}
ACCOUNT_REFERENCES = {"CONTACT": "accountId", "DEAL": "accountId"}
DEAL_STATUSES = ("WON", "LOST", "OPEN")
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_LINE_ERRORS = 20
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]+$")
OBJECT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
DATETIME_NO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class CrmRequest:
    """One asynchronous request (an upload or an integration deletion) and its progress."""

    client_request_id: str
    kind: str
    object_type: str | None
    data: bytes = b""
    status: str = "PENDING"
    success_count: int = 0
    error_count: int = 0
    errors: list[JSON] = field(default_factory=list)
    polls: int = 0


@dataclass
class CrmStore:
    """The simulated company's generic-CRM state, and the test hooks."""

    integration: JSON | None = None
    schemas: dict[str, list[JSON]] = field(default_factory=dict)
    entities: dict[str, dict[str, JSON]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    requests: dict[str, CrmRequest] = field(default_factory=dict)
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail_next_upload: str | None = None
    hold: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    registrations: int = 0


def routes(sim: GongSimulator) -> dict[str, dict[str, Handler]]:
    """Returns this module's routes: {path: {method: handler(query, body) -> JSON payload}}."""
    from simulator.server import ApiError, FormPart, Reply

    store = CrmStore()
    sim.crm = store  # type: ignore[attr-defined]

    def fail(status: int, message: str) -> ApiError:
        return ApiError(status, message)

    def integration_id(query: JSON) -> int:
        raw = query.get("integrationId", "")
        if not raw:
            raise fail(400, "Missing required parameter [integrationId]")
        if not str(raw).isdigit():
            raise fail(400, f"integrationId [{raw}] must be an integer")
        if store.integration is None or int(raw) != store.integration["integrationId"]:
            raise fail(400, f"Unknown integrationId [{raw}]: register the integration first")
        return int(raw)

    def object_type(query: JSON, allowed: tuple[str, ...] = OBJECT_TYPES, required: bool = True) -> str | None:
        value = query.get("objectType")
        if not value:
            if required:
                raise fail(400, "Missing required parameter [objectType]")
            return None
        if value not in allowed:
            raise fail(400, f"objectType [{value}] must be one of {', '.join(allowed)}")
        return str(value)

    def client_request_id(query: JSON) -> str:
        value = query.get("clientRequestId", "")
        if not value:
            raise fail(400, "Missing required parameter [clientRequestId]")
        if not CLIENT_REQUEST_ID.match(value):
            raise fail(400, "clientRequestId may contain only letters, numbers, dashes and underscores")
        if value in store.requests:
            raise fail(409, f"Client request id [{value}] has already been used")
        return str(value)

    # ---------------------------------------------------------------- integrations
    def list_integrations(query: JSON, body: Any) -> JSON:
        return {"integrations": [dict(store.integration)] if store.integration else []}

    def register_integration(query: JSON, body: Any) -> JSON:
        if not isinstance(body, dict):
            raise fail(400, "Request body must be a JSON object with name and ownerEmail")
        for key in ("name", "ownerEmail"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise fail(400, f"Mandatory field [{key}] is missing or empty")
        if store.integration is not None:
            raise fail(409, "An active integration already exists")
        store.registrations += 1
        digest = hashlib.sha256(f"{sim.config.seed}:crm:{store.registrations}".encode()).digest()
        # Always above 2**53 (and below 2**63): a float parse would change it.
        new_id = (1 << 62) + int.from_bytes(digest[:8], "big") % (1 << 61)
        store.integration = {"integrationId": new_id, "name": body["name"], "ownerEmail": body["ownerEmail"]}
        return {"integrationId": new_id}

    def delete_integration(query: JSON, body: Any) -> JSON:
        integration_id(query)
        crid = client_request_id(query)
        store.requests[crid] = CrmRequest(crid, "DELETE_INTEGRATION", None)
        return Reply(201, {"clientRequestId": crid})

    # ---------------------------------------------------------------- schema
    def get_schema(query: JSON, body: Any) -> JSON:
        integration_id(query)
        wanted = object_type(query, SCHEMA_OBJECT_TYPES, required=False)
        types = [wanted] if wanted else [t for t in SCHEMA_OBJECT_TYPES if t in store.schemas]
        return {"objectTypeToSelectedFields": {t: [dict(f) for f in store.schemas.get(t, [])] for t in types}}

    def post_schema(query: JSON, body: Any) -> JSON:
        integration_id(query)
        otype = object_type(query, SCHEMA_OBJECT_TYPES)
        if not isinstance(body, list):
            raise fail(400, "Request body must be a JSON array of schema fields")
        fields: list[JSON] = []
        for i, item in enumerate(body):
            problem = _schema_field_problem(item)
            if problem:
                raise fail(400, f"Schema field {i}: {problem}")
            if not item.get("isDeleted"):
                fields.append({k: item[k] for k in ("uniqueName", "label", "type", "lastModified", "isDeleted",
                                                     "referenceTo", "orderedValueList") if item.get(k) is not None})
        names = [f["uniqueName"] for f in fields]
        if len(set(names)) != len(names):
            raise fail(400, "Duplicate uniqueName in schema fields")
        # The list is the full schema: fields not sent (or sent with isDeleted) are gone.
        store.schemas[str(otype)] = fields
        return Reply(201, {})

    # ---------------------------------------------------------------- entities
    def upload_entities(query: JSON, body: Any) -> JSON:
        integration_id(query)
        otype = object_type(query)
        crid = client_request_id(query)
        part = body.get("dataFile") if isinstance(body, dict) else None
        if not isinstance(part, FormPart):
            raise fail(400, "The request must be multipart/form-data with a [dataFile] part")
        if len(part.data) > store.max_file_bytes:
            raise fail(400, f"dataFile is {len(part.data)} bytes, above the limit of {store.max_file_bytes}")
        request = CrmRequest(crid, "UPLOAD", otype, part.data)
        if store.fail_next_upload is not None:
            request.errors = [{"line": 0, "description": store.fail_next_upload}]
            request.kind = "FAIL"
            store.fail_next_upload = None
        store.requests[crid] = request
        store.uploads.append((crid, str(otype), part.data))
        return Reply(201, {"clientRequestId": crid})

    def get_entities(query: JSON, body: Any) -> JSON:
        integration_id(query)
        otype = str(object_type(query))
        ids = body if body is not None else ([query["objectsCrmIds"]] if query.get("objectsCrmIds") else None)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise fail(400, "The request body must be a JSON array of object ids")
        stored = store.entities[otype]
        return {"crmObjectsMap": {i: stored.get(i) for i in ids[:100]}}

    # ---------------------------------------------------------------- status
    def request_status(query: JSON, body: Any) -> JSON:
        integration_id(query)
        crid = query.get("clientRequestId", "")
        request = store.requests.get(crid)
        if request is None:
            raise fail(404, f"Request with clientRequestId [{crid}] was not found")
        answer = _status_body(request)
        request.polls += 1
        if request.status == "PENDING":
            request.status = "IN_PROGRESS"
        elif request.status == "IN_PROGRESS" and not store.hold:
            _finish(store, request)
        return answer

    upload_entities.any_body = True  # type: ignore[attr-defined]
    post_schema.any_body = True  # type: ignore[attr-defined]
    return {
        "/v2/crm/integrations": {"GET": list_integrations, "PUT": register_integration,
                                 "DELETE": delete_integration},
        "/v2/crm/entity-schema": {"GET": get_schema, "POST": post_schema},
        "/v2/crm/entities": {"GET": get_entities, "POST": upload_entities},
        "/v2/crm/request-status": {"GET": request_status},
    }


def _status_body(request: CrmRequest) -> JSON:
    out: JSON = {"status": request.status}
    if request.status in ("DONE", "FAILED"):
        out.update(totalSuccessCount=request.success_count, totalErrorCount=request.error_count,
                   errors=request.errors[:MAX_LINE_ERRORS])
    return out


def _finish(store: CrmStore, request: CrmRequest) -> None:
    """Processes a request: applies its valid lines, records line errors, sets DONE or FAILED."""
    if request.kind == "DELETE_INTEGRATION":
        store.integration = None
        store.schemas.clear()
        for objects in store.entities.values():
            objects.clear()
        request.status = "DONE"
        return
    if request.kind == "FAIL":
        request.status, request.error_count = "FAILED", 1
        return
    problem = _file_problem(request.data)
    if problem:
        request.status, request.error_count = "FAILED", 1
        request.errors = [{"line": problem[0], "description": problem[1]}]
        return
    otype = str(request.object_type)
    schema = {f["uniqueName"]: f for f in store.schemas.get(otype, [])}
    seen: dict[str, int] = {}
    for number, raw in enumerate(request.data.decode().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        error = _line_problem(store, otype, schema, line, seen, number)
        if error:
            request.error_count += 1
            request.errors.append({"line": number, "description": error})
            continue
        request.success_count += 1
        _apply(store, otype, schema, line)
    request.status = "DONE"


def _file_problem(data: bytes) -> tuple[int, str] | None:
    """Why the whole file is refused (FAILED), or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return 0, "The file is not UTF-8 encoded"
    lines = [raw for raw in text.splitlines() if raw.strip()]
    if not lines:
        return 0, "The file is empty"
    previous: datetime | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            modified = parse_iso(json.loads(raw)["modifiedDate"])
        except (ValueError, KeyError, TypeError):
            continue
        if previous is not None and modified < previous:
            return number, "The file is not sorted by modifiedDate"
        previous = modified
    return None


def _line_problem(store: CrmStore, otype: str, schema: dict[str, JSON], line: Any, seen: dict[str, int],
                  number: int) -> str | None:
    if not isinstance(line, dict):
        return "Line is not a valid JSON object"
    object_id = line.get("objectId")
    if not isinstance(object_id, str) or not object_id:
        return "Mandatory field [objectId] is missing or empty"
    if not OBJECT_ID.match(object_id):
        return f"Field [objectId] value [{object_id[:80]}] must be 1-64 letters, digits or ._:-"
    if object_id in seen:
        return f"Object [{object_id}] appears more than once in the file (first on line {seen[object_id]})"
    seen[object_id] = number
    modified = line.get("modifiedDate")
    if not isinstance(modified, str) or not modified:
        return "Mandatory field [modifiedDate] is missing or empty"
    if not DATETIME_NO_MS.match(modified):
        return f"Field [modifiedDate] value [{modified}] must be ISO-8601 without milliseconds"
    if not isinstance(line.get("isDeleted"), bool):
        return "Mandatory field [isDeleted] is missing or not a boolean"
    if line["isDeleted"]:
        return None
    for name in REQUIRED_FIELDS[otype]:
        if line.get(name) in (None, ""):
            return f"Mandatory field [{name}] is missing or empty"
    url = line.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return f"Field [url] value [{url}] is not a valid URL"
    if otype == "DEAL":
        if line["status"] not in DEAL_STATUSES:
            return f"Field [status] value [{line['status']}] must be one of WON, LOST, OPEN"
        if not isinstance(line["amount"], int | float) or isinstance(line["amount"], bool):
            return f"Field [amount] value [{line['amount']}] is not a number"
        if not isinstance(line["closeDate"], str) or not DATE_ONLY.match(line["closeDate"]):
            return f"Field [closeDate] value [{line['closeDate']}] must be a date (YYYY-MM-DD)"
    email = line.get("emailAddress")
    if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
        return f"Field [emailAddress] value [{email}] is not a valid email address"
    ref = ACCOUNT_REFERENCES.get(otype)
    if ref and line[ref] not in store.entities["ACCOUNT"]:
        return f"Referenced account [{line[ref]}] in field [{ref}] was not found"
    for name, spec in schema.items():
        if name in line and line[name] is not None:
            problem = _value_problem(spec, line[name])
            if problem:
                return f"Field [{name}] {problem}"
    return None


def _value_problem(spec: JSON, value: Any) -> str | None:
    kind = spec["type"]
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"value [{value}] is not a boolean"
    if kind in ("NUMBER", "CURRENCY", "PERCENT"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"value [{value}] is not a number"
        if kind == "PERCENT" and not 0 <= value <= 100:
            return f"value [{value}] is not a percentage between 0 and 100"
        return None
    if kind == "STRINGARRAY":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else f"value [{value}] is not an array of strings"
    if not isinstance(value, str):
        return f"value [{value}] is not a string"
    if kind == "DATE" and not DATE_ONLY.match(value):
        return f"value [{value}] must be a date (YYYY-MM-DD)"
    if kind == "DATETIME" and not DATETIME_NO_MS.match(value):
        return f"value [{value}] must be ISO-8601 without milliseconds"
    if kind == "PICKLIST" and value not in (spec.get("orderedValueList") or []):
        return f"value [{value}] is not one of the picklist values"
    if kind == "EMAILADDRESS" and not EMAIL.match(value):
        return f"value [{value}] is not a valid email address"
    return None


def _apply(store: CrmStore, otype: str, schema: dict[str, JSON], line: JSON) -> None:
    objects = store.entities[otype]
    current = objects.get(line["objectId"])
    if current is not None and parse_iso(current["modifiedDate"]) > parse_iso(line["modifiedDate"]):
        return  # an older version than the one Gong holds changes nothing
    if line["isDeleted"]:
        objects.pop(line["objectId"], None)
        return
    standard = {"objectId", "modifiedDate", "isDeleted", *STANDARD_FIELDS[otype]}
    # Fields that are neither standard nor in the schema are not kept (Gong does not show them).
    objects[line["objectId"]] = {k: v for k, v in line.items() if k in standard or k in schema}


def _schema_field_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "must be a JSON object"
    for key in ("uniqueName", "label", "type"):
        if not isinstance(item.get(key), str) or not item[key]:
            return f"mandatory field [{key}] is missing or empty"
    if item["type"] not in FIELD_TYPES:
        return f"type [{item['type']}] must be one of {', '.join(FIELD_TYPES)}"
    if item["type"] == "REFERENCE" and item.get("referenceTo") not in REFERENCE_TARGETS:
        return f"referenceTo must be one of {', '.join(REFERENCE_TARGETS)} for a REFERENCE field"
    if item["type"] == "PICKLIST":
        values = item.get("orderedValueList")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            return "orderedValueList (a non-empty list of strings) is required for a PICKLIST field"
    modified = item.get("lastModified")
    if modified is not None and (not isinstance(modified, str) or not DATETIME_NO_MS.match(modified)):
        return "lastModified must be ISO-8601 without milliseconds"
    return None

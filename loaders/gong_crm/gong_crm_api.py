"""Gong's generic-CRM endpoints, on top of GongClient (auth, limiter, retries stay in the client)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import requests

from sources.gong.client import GongApiError, GongClient

from .settings import POLL_FACTOR, POLL_FIRST_WAIT_S, POLL_MAX_WAIT_S, POLL_TIMEOUT_S

logger = logging.getLogger("gong_sync.crm.api")

TERMINAL = ("DONE", "FAILED")


class IntegrationError(GongApiError):
    """The Gong account's CRM integration is not the one the mapping names; the message says what to do."""


@dataclass
class RequestStatus:
    """Gong's answer to request-status: status, counts and up to 20 line errors."""

    status: str
    success_count: Optional[int] = None
    error_count: Optional[int] = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Returns whether Gong is done with the request (DONE or FAILED)."""
        return self.status in TERMINAL


class GongCrmApi:
    """Integration lookup and registration, schema push, upload, request status."""

    def __init__(self, client: GongClient, sleep: Callable[[float], None] = time.sleep,
                 poll_first_wait_s: float = POLL_FIRST_WAIT_S, poll_max_wait_s: float = POLL_MAX_WAIT_S,
                 poll_timeout_s: float = POLL_TIMEOUT_S) -> None:
        self.client = client
        self.sleep = sleep
        self.poll_first_wait_s = poll_first_wait_s
        self.poll_max_wait_s = poll_max_wait_s
        self.poll_timeout_s = poll_timeout_s

    def find_or_register_integration(self, name: str, owner_email: str) -> str:
        """Returns the id (as text: an int64 kept whole) of the integration named `name`, registering it if none.

        Raises IntegrationError when Gong holds another integration (Gong allows only one).
        """
        for _ in range(2):
            existing = self._integrations()
            for integration in existing:
                if integration.get("name") == name:
                    return str(integration["integrationId"])
            if existing:
                other = existing[0]
                raise IntegrationError(
                    f"Gong already has a CRM integration named {other.get('name')!r} (id "
                    f"{other.get('integrationId')}) and allows only one: set integration.name in the mapping "
                    "to that name, or delete that integration first."
                )
            response = self.client.send("PUT", "/v2/crm/integrations",
                                        json_body={"name": name, "ownerEmail": owner_email})
            if response.status_code == 409:
                continue  # registered meanwhile by someone else: look again
            payload = self._payload(response, "/v2/crm/integrations")
            integration_id = payload.get("integrationId")
            if not isinstance(integration_id, int):
                raise GongApiError("Gong's answer to PUT /v2/crm/integrations has no integrationId.")
            logger.info("Registered the CRM integration %r (id %s)", name, integration_id)
            return str(integration_id)
        raise IntegrationError("Gong answered 409 to registering the CRM integration but lists none: try again.")

    def push_schema(self, integration_id: str, object_type: str, fields: list[dict[str, Any]],
                    last_modified: str) -> None:
        """Sends the full custom-field list of `object_type` (each field stamped with `last_modified`)."""
        body = [{**f, "lastModified": last_modified} for f in fields]
        response = self.client.send("POST", "/v2/crm/entity-schema", json_body=body,
                                    params={"integrationId": integration_id, "objectType": object_type})
        self._payload(response, "/v2/crm/entity-schema")

    def upload(self, integration_id: str, object_type: str, client_request_id: str, file_name: str,
               data: bytes) -> bool:
        """Uploads one LDJSON file; returns False when Gong already has this clientRequestId (HTTP 409)."""
        response = self.client.send(
            "POST", "/v2/crm/entities",
            params={"integrationId": integration_id, "objectType": object_type,
                    "clientRequestId": client_request_id},
            files={"dataFile": (file_name, data, "application/x-ndjson")},
        )
        if response.status_code == 409:
            logger.info("Gong already has request %s; polling it instead of uploading again", client_request_id)
            return False
        self._payload(response, "/v2/crm/entities")
        return True

    def status(self, integration_id: str, client_request_id: str) -> Optional[RequestStatus]:
        """Returns the request's status, or None when Gong does not know the clientRequestId."""
        response = self.client.send("GET", "/v2/crm/request-status",
                                    params={"integrationId": integration_id, "clientRequestId": client_request_id})
        if response.status_code == 404:
            return None
        payload = self._payload(response, "/v2/crm/request-status")
        status = payload.get("status")
        if status not in ("PENDING", "IN_PROGRESS", *TERMINAL):
            raise GongApiError(f"Gong's request-status answer has an unknown status {status!r}.")
        return RequestStatus(status=status, success_count=payload.get("totalSuccessCount"),
                             error_count=payload.get("totalErrorCount"), errors=list(payload.get("errors") or []))

    def wait(self, integration_id: str, client_request_id: str) -> Optional[RequestStatus]:
        """Polls with growing waits until DONE or FAILED or the poll timeout; returns the last status.

        The timeout is measured in the waits asked of `sleep`, so tests stay independent of the wall clock.
        """
        waited = 0.0
        wait = self.poll_first_wait_s
        while True:
            current = self.status(integration_id, client_request_id)
            if current is None or current.finished:
                return current
            if waited + wait > self.poll_timeout_s:
                return current
            logger.debug("Request %s is %s; polling again in %.0f s", client_request_id, current.status, wait)
            self.sleep(wait)
            waited += wait
            wait = min(self.poll_max_wait_s, wait * POLL_FACTOR)

    def get_entities(self, integration_id: str, object_type: str, object_ids: list[str]) -> dict[str, Any]:
        """Returns Gong's stored objects by id (None for unknown ids); at most 100 ids per call."""
        response = self.client.send("GET", "/v2/crm/entities", json_body=object_ids,
                                    params={"integrationId": integration_id, "objectType": object_type})
        return dict(self._payload(response, "/v2/crm/entities").get("crmObjectsMap") or {})

    @staticmethod
    def _payload(response: requests.Response, path: str) -> dict[str, Any]:
        if response.status_code not in (200, 201):
            raise GongApiError(f"Gong answered HTTP {response.status_code} for {path}: {_errors(response)}")
        try:
            payload = response.json() if response.content.strip() else {}
        except ValueError:
            raise GongApiError(f"Gong's answer to {path} is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise GongApiError(f"Gong's answer to {path} is not a JSON object.")
        return payload

    def _integrations(self) -> list[dict[str, Any]]:
        response = self.client.send("GET", "/v2/crm/integrations")
        return list(self._payload(response, "/v2/crm/integrations").get("integrations") or [])


def _errors(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return (response.text or "").strip()[:200] or "no details"
    errors = payload.get("errors") if isinstance(payload, dict) else None
    return "; ".join(str(e) for e in errors)[:300] if errors else "no details"

"""Gong's generic-CRM rules the loader checks before uploading (constants only)."""

from __future__ import annotations

import re

# Upload order: the objects others reference go first.
OBJECT_TYPES: tuple[str, ...] = ("ACCOUNT", "BUSINESS_USER", "STAGE", "CONTACT", "DEAL", "LEAD")
# Object types whose custom-field schema Gong accepts (POST /v2/crm/entity-schema).
SCHEMA_OBJECT_TYPES: tuple[str, ...] = ("ACCOUNT", "CONTACT", "DEAL", "LEAD")

# Gong's standard fields per object type, besides objectId, modifiedDate and isDeleted: name -> field type.
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "ACCOUNT": {"url": "URL", "name": "STRING", "domains": "STRINGARRAY", "ownerId": "REFERENCE"},
    "CONTACT": {"url": "URL", "accountId": "REFERENCE", "firstName": "STRING", "lastName": "STRING",
                "emailAddress": "EMAILADDRESS", "phoneNumber": "PHONENUMBER", "title": "STRING",
                "ownerId": "REFERENCE"},
    "DEAL": {"url": "URL", "name": "STRING", "accountId": "REFERENCE", "ownerId": "REFERENCE",
             "stage": "REFERENCE", "status": "DEAL_STATUS", "closeDate": "DATE", "amount": "NUMBER"},
    "LEAD": {"url": "URL", "firstName": "STRING", "lastName": "STRING", "emailAddress": "EMAILADDRESS",
             "phoneNumber": "PHONENUMBER", "title": "STRING", "company": "STRING", "ownerId": "REFERENCE",
             "convertedToAccountId": "REFERENCE", "convertedToContactId": "REFERENCE",
             "convertedToDealId": "REFERENCE"},
    "BUSINESS_USER": {"url": "URL", "emailAddress": "EMAILADDRESS", "firstName": "STRING", "lastName": "STRING",
                      "title": "STRING"},
    "STAGE": {"url": "URL", "name": "STRING", "sortOrder": "NUMBER", "probability": "PERCENT"},
}
# Fields a line that is not a deletion must carry (objectId and modifiedDate always are).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "ACCOUNT": ("url", "name"),
    "CONTACT": ("url", "accountId"),
    "DEAL": ("url", "name", "accountId", "ownerId", "stage", "status", "closeDate", "amount"),
    "LEAD": ("url",),
    "BUSINESS_USER": ("url", "emailAddress"),
    "STAGE": ("url", "name"),
}
# Standard reference fields -> the object type they point at (checked when that type is mapped too).
STANDARD_REFERENCES: dict[str, dict[str, str]] = {
    "ACCOUNT": {"ownerId": "BUSINESS_USER"},
    "CONTACT": {"accountId": "ACCOUNT", "ownerId": "BUSINESS_USER"},
    "DEAL": {"accountId": "ACCOUNT", "ownerId": "BUSINESS_USER", "stage": "STAGE"},
    "LEAD": {"ownerId": "BUSINESS_USER", "convertedToAccountId": "ACCOUNT", "convertedToContactId": "CONTACT",
             "convertedToDealId": "DEAL"},
    "BUSINESS_USER": {},
    "STAGE": {},
}
# Custom-field types Gong accepts, and what a REFERENCE custom field may point at.
CUSTOM_FIELD_TYPES: tuple[str, ...] = (
    "DATE", "DATETIME", "NUMBER", "PERCENT", "CURRENCY", "ID", "URL", "STRING", "BOOLEAN", "PHONENUMBER",
    "EMAILADDRESS", "PICKLIST", "REFERENCE", "STRINGARRAY",
)
REFERENCE_TARGETS: dict[str, str] = {"ACCOUNT": "ACCOUNT", "CONTACT": "CONTACT", "DEAL": "DEAL", "LEAD": "LEAD",
                                     "USER": "BUSINESS_USER"}
DEAL_STATUSES: tuple[str, ...] = ("WON", "LOST", "OPEN")

OBJECT_ID_MAX_LENGTH = 64
OBJECT_ID = re.compile(r"^[A-Za-z0-9._:-]+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Gong refuses files above 200 MB; stay a little below it.
MAX_FILE_BYTES = 200 * 1000 * 1000
# Polling request-status: first wait, growth factor, longest wait, and the total bound (seconds).
POLL_FIRST_WAIT_S = 2.0
POLL_FACTOR = 2.0
POLL_MAX_WAIT_S = 60.0
POLL_TIMEOUT_S = 1800.0

"""The reverse loader: CRM entities from any SQL database into Gong's generic-CRM upload endpoints.

read (reader.py, SQLAlchemy) -> map and validate (mapping.py, validate.py) -> LDJSON files (files.py)
-> integration, schema, upload, status (gong_crm_api.py, on GongClient) -> upload log (upload_log.py).
`run_upload` in upload.py runs it all; pipelines/crm_upload.py is the command line.
"""

from .gong_crm_api import GongCrmApi, IntegrationError, RequestStatus
from .mapping import Mapping, MappingError, load_mapping
from .reader import CrmSource, SourceError, make_engine
from .upload import TypeReport, UploadResult, run_upload
from .upload_log import UploadLog

__all__ = [
    "CrmSource", "GongCrmApi", "IntegrationError", "Mapping", "MappingError", "RequestStatus", "SourceError",
    "TypeReport", "UploadLog", "UploadResult", "load_mapping", "make_engine", "run_upload",
]

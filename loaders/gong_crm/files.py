"""Line-delimited JSON upload files: sorted by modifiedDate, one line per object, split by size."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from .validate import Line, Rejection


@dataclass
class UploadFile:
    """One file to upload: its bytes, the objects in it, and the watermark it carries once DONE."""

    object_type: str
    part: int
    data: bytes
    object_ids: list[str]
    watermark: datetime
    content_hash: str = ""
    path: Optional[Path] = None
    client_request_id: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Returns the file's name: object type, part number and the start of the content hash."""
        return f"{self.object_type.lower()}-{self.part:04d}-{self.content_hash[:12]}.ldjson"


def encode_line(line: Line) -> bytes:
    """Returns one object as a JSON line (compact, UTF-8, newline-terminated)."""
    return (json.dumps(line.data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def build_files(object_type: str, lines: list[Line], max_bytes: int, integration_id: str = "0"
                ) -> tuple[list[UploadFile], list[Rejection]]:
    """Returns the files holding `lines` (each at most `max_bytes`), and the lines too big for any file.

    Lines are sorted by modifiedDate (then objectId); each objectId must appear only once in `lines`.
    """
    ordered = sorted(lines, key=lambda line: (line.modified, line.object_id))
    files: list[UploadFile] = []
    rejected: list[Rejection] = []
    chunk: list[bytes] = []
    ids: list[str] = []
    size = 0
    last: Optional[datetime] = None

    def close() -> None:
        nonlocal chunk, ids, size
        if chunk and last is not None:
            files.append(UploadFile(object_type, len(files) + 1, b"".join(chunk), ids, last))
        chunk, ids, size = [], [], 0

    for line in ordered:
        encoded = encode_line(line)
        if len(encoded) > max_bytes:
            rejected.append(Rejection(object_type, line.object_id,
                                      f"the object's line is {len(encoded)} bytes, above the file size limit "
                                      f"of {max_bytes} bytes"))
            continue
        if size + len(encoded) > max_bytes:
            close()
        chunk.append(encoded)
        ids.append(line.object_id)
        size += len(encoded)
        last = line.modified
    close()
    for upload in files:
        upload.content_hash = content_hash(integration_id, object_type, upload.data)
    return files, rejected


def content_hash(integration_id: str, object_type: str, data: bytes) -> str:
    """Returns the hash naming a file's content for one integration and object type."""
    digest = hashlib.sha256(f"{integration_id}:{object_type}:".encode())
    digest.update(data)
    return digest.hexdigest()


def client_request_id(object_type: str, content_hash_hex: str, attempt: int) -> str:
    """Returns the deterministic clientRequestId of a file's `attempt`-th upload (letters, digits, dashes)."""
    return f"gong-sync-{object_type.lower().replace('_', '-')}-{content_hash_hex[:40]}-{attempt}"


def write_file(upload: UploadFile, directory: Path) -> Path:
    """Writes the file into `directory` (created when missing) and returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / upload.name
    path.write_bytes(upload.data)
    upload.path = path
    return path

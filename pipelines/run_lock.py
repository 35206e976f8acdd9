"""One run at a time per pipeline: a second concurrent run refuses at once with a clear message."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Optional


class RunLockedError(Exception):
    """Another run of the same pipeline holds the lock; the message says what to do."""


class RunLock:
    """An exclusive, non-blocking file lock; the OS releases it when its process ends, even on kill -9."""

    def __init__(self, path: Path, pipeline_name: str) -> None:
        self.path = Path(path)
        self.pipeline_name = pipeline_name
        self._file: Optional[IO[str]] = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunLockedError(
                f"Another gong-sync run of pipeline '{self.pipeline_name}' is in progress (pid {holder}): "
                "wait for it to finish; runs of one pipeline cannot overlap."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

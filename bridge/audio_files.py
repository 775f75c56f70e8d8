"""Recording files on disk: where one is (never outside the root) and sending a slice of it.

``recording_file`` turns a recording's stored path, relative to the recordings
root, into the file to open, and refuses any path that would lead outside the
root: an absolute path, a ``..`` step, or a symbolic link that points away.
``FileSlice`` is the response that streams bytes of an open file; the handler
decides which bytes (``byte_ranges.plan_range``) before it is sent, so the
middlewares still add their headers to it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

__all__ = ["CONTENT_TYPES", "FileSlice", "OutsideRoot", "recording_file"]

CONTENT_TYPES = {"wav": "audio/wav", "ogg": "audio/ogg"}
_CHUNK_BYTES = 256 * 1024  # ~8 s of stereo 8 kHz 16-bit audio per read


class OutsideRoot(ValueError):
    """A stored recording path that does not lead to a file under the recordings root."""


def recording_file(root: Path, relative: str) -> Path:
    """The file under ``root`` that the recording path ``relative`` names.

    Raises:
        OutsideRoot: ``relative`` is absolute, has a ``..`` step or a NUL, or
            resolves (through symbolic links) to somewhere outside ``root``.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise OutsideRoot(f"not a recording path: {relative!r}")
    parts = PurePosixPath(relative)
    if parts.is_absolute() or ".." in parts.parts:
        raise OutsideRoot(f"not a path under the recordings directory: {relative!r}")
    base = root.resolve()
    path = (base / parts).resolve()
    if not path.is_relative_to(base):
        raise OutsideRoot(f"{relative!r} leads outside the recordings directory")
    return path


class FileSlice(web.StreamResponse):
    """Streams ``length`` bytes of ``file`` from ``start`` once prepared, then closes it.

    The file is opened by the handler (so a missing file is its clean 404) and
    read in a worker thread with ``os.pread``, so a slow disk never blocks the
    event loop and concurrent slices of one file do not share a position.
    """

    def __init__(
        self,
        file: BinaryIO,
        start: int,
        length: int,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status=status, headers=headers)
        self._slice_file = file
        self._slice_start = start
        self._slice_length = length
        self.content_length = length

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the headers and the bytes."""
        if self.prepared:
            return await super().prepare(request)
        try:
            writer = await super().prepare(request)
            position, remaining = self._slice_start, self._slice_length
            fd = self._slice_file.fileno()
            while remaining > 0:
                chunk = await asyncio.to_thread(
                    os.pread, fd, min(remaining, _CHUNK_BYTES), position
                )
                if not chunk:
                    # The file shrank under us. Failing drops the connection, so the client
                    # does not wait for the bytes its Content-Length still promises.
                    raise OSError(f"{self._slice_file.name} ended {remaining} bytes early")
                await self.write(chunk)
                position += len(chunk)
                remaining -= len(chunk)
            await self.write_eof()
            return writer
        finally:
            await asyncio.to_thread(self._slice_file.close)

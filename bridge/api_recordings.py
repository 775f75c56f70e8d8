"""QA routes of a call: its transcript, a recording's metadata, and the audio itself.

``GET /api/recordings/{id}/audio`` serves the file with HTTP Range requests
(``byte_ranges``) from under the recordings root (``audio_files``), answers
410 once the retention policy has deleted it, and audits each playback as
``recording.play`` once per listener and recording in a window
(``playback_audit``). The audit entry is committed before any byte leaves.
"""

from __future__ import annotations

import asyncio
import logging
import os
from email.utils import formatdate
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from bridge.audio_files import CONTENT_TYPES, FileSlice, OutsideRoot, recording_file
from bridge.byte_ranges import ByteRange, RangeNotSatisfiable, entity_tag, plan_range
from bridge.errors import ApiError
from bridge.keys import PLAYBACK_AUDIT
from bridge.operations import ApiRequest, OperationHandler
from bridge.pii import unredacted_read
from bridge.serialize import recording_json, segment_json

__all__ = ["HANDLERS"]

log = logging.getLogger(__name__)


async def get_transcript(call: ApiRequest) -> web.Response:
    """``GET /api/conversations/{id}/transcript``: both channels, timed words; audited."""
    conversation_id = call.params["conversation_id"]
    if await call.store.get_conversation(conversation_id) is None:
        raise ApiError(404, f"no conversation {conversation_id}", field="conversation_id")
    unredacted = unredacted_read(call)
    recordings = await call.store.recordings_of(conversation_id)
    jobs = [await call.store.transcription_job(r.id) for r in recordings]
    segments = await call.store.transcript(conversation_id, unredacted=unredacted)
    await call.store.audit(
        call.actor,
        "transcript.read",
        f"conversation:{conversation_id}",
        {"unredacted": unredacted, "segments": len(segments)},
    )
    return web.json_response(
        {
            "conversation_id": conversation_id,
            "redacted": not unredacted,
            "recordings": [recording_json(r, j) for r, j in zip(recordings, jobs, strict=True)],
            "segments": [segment_json(s) for s in segments],
        }
    )


async def _recording(call: ApiRequest) -> Any:
    recording_id = call.params["recording_id"]
    recording = await call.store.get_recording(recording_id)
    if recording is None:
        raise ApiError(404, f"no recording {recording_id}", field="recording_id")
    return recording


async def get_recording(call: ApiRequest) -> web.Response:
    """``GET /api/recordings/{id}``: metadata and transcription status (also once deleted)."""
    recording = await _recording(call)
    job = await call.store.transcription_job(recording.id)
    return web.json_response(recording_json(recording, job))


async def get_recording_audio(call: ApiRequest) -> web.StreamResponse:
    """``GET /api/recordings/{id}/audio``: 200, 206 or 416 (RFC 9110 §14); audited."""
    recording = await _recording(call)
    if recording.deleted_at is not None:
        when = formatdate(recording.deleted_at, usegmt=True)
        raise ApiError(
            410, f"recording {recording.id} was deleted by the retention policy ({when})"
        )
    root = call.settings.recordings_dir
    if root is None:
        raise ApiError(404, "this server serves no audio: no recordings directory is configured")
    try:
        path = recording_file(root, recording.path)
    except OutsideRoot as exc:
        # The store holds a path we will not follow: a damaged or tampered row, not the client.
        log.error("recording %s: %s", recording.id, exc)
        raise ApiError(
            404, f"recording {recording.id} has no file under the recordings directory"
        ) from None
    try:
        file, stat = await asyncio.to_thread(_open, path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        raise ApiError(404, f"recording {recording.id}'s file is missing") from None
    try:
        return await _audio_response(call, recording, file, stat)
    except BaseException:
        file.close()
        raise


def _open(path: Path) -> tuple[BinaryIO, os.stat_result]:
    file = path.open("rb")
    try:
        return file, os.fstat(file.fileno())  # the size of what is open, not of a later name
    except BaseException:
        file.close()
        raise


async def _audio_response(
    call: ApiRequest, recording: Any, file: BinaryIO, stat: os.stat_result
) -> web.StreamResponse:
    size = stat.st_size
    etag = entity_tag(stat.st_mtime_ns, size)
    headers = call.request.headers
    plan = plan_range(
        headers.get("Range"),
        size,
        if_range=headers.get("If-Range"),
        etag=etag,
        last_modified_s=int(stat.st_mtime),
    )
    if isinstance(plan, RangeNotSatisfiable):
        file.close()
        raise ApiError(
            416,
            f"range {headers.get('Range')!r} is beyond the recording's {size} bytes",
            headers={"Content-Range": plan.content_range, "Accept-Ranges": "bytes"},
        )
    await _audit_playback(call, recording)
    reply_headers = {
        "Content-Type": CONTENT_TYPES.get(recording.fmt, "application/octet-stream"),
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
    }
    if isinstance(plan, ByteRange):
        reply_headers["Content-Range"] = plan.content_range
        return FileSlice(file, plan.start, plan.length, status=206, headers=reply_headers)
    return FileSlice(file, 0, size, status=200, headers=reply_headers)


async def _audit_playback(call: ApiRequest, recording: Any) -> None:
    audits = call.request.app[PLAYBACK_AUDIT]
    actor = call.actor
    if not audits.should_audit(actor, recording.id):
        return
    try:
        await call.store.audit(
            actor,
            "recording.play",
            f"recording:{recording.id}",
            {"conversation_id": recording.conversation_id, "call_id": recording.call_id},
        )
    except BaseException:
        audits.forget(actor, recording.id)  # the next request tries again
        raise


HANDLERS: dict[str, OperationHandler] = {
    "getTranscript": get_transcript,
    "getRecording": get_recording,
    "getRecordingAudio": get_recording_audio,
}

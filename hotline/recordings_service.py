"""The server's recordings: registered at hang-up, transcribed after, deleted when too old.

``RecordingsService`` is what ``HotlineServer`` holds for the ``recordings``
section of the configuration:

- ``call_ended(call_id, file, started_at)``: waits off the call path until the
  media core has closed the file (``MediaEngine.recordings_written``), then
  ``CallRecords.recording_closed`` registers it in the call's chain of store
  writes, which queues its transcription job and wakes the runner;
- transcription: ``recordings.transcribe_pool`` processes (the configured
  recognizer, or ``recordings.backend``/``model_path``; pocketsphinx gets the
  flow's intent phrases, and the agent side also its prompts) worked by
  ``recordings.runner`` under this node's name. They start in the background,
  so the server takes calls at once; jobs wait in the store meanwhile;
- ``recordings.retention.RetentionSweep`` every ``sweep_interval_s``;
- once, ``ORPHAN_QUIET_S`` after the start, ``recordings.orphans.adopt_orphans``
  registers recordings of calls that a crash cut off (never registered).

``stop`` ends the runner (jobs in progress go back to the queue), the workers
and the sweep, then waits (bounded) for registrations still on their way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.models import ModelNotFoundError, find_vosk_model
from conversations import StoreError
from hotline.call_records import CallRecords, RecordingOptions
from hotline.config import Config, ConfigError, node_name, recordings_dir
from hotline.logs import call_log
from recordings.orphans import adopt_orphans
from recordings.retention import RetentionSweep
from recordings.runner import RunnerSettings, TranscriptionRunner
from recordings.transcribe import TranscriberSettings
from recordings.transcribe_pool import TranscriptionError, TranscriptionPool

if TYPE_CHECKING:
    from ivr.flow import Flow

__all__ = ["RecordingsService", "transcriber_settings"]

log = logging.getLogger("hotline.recordings")

# How much likelier than one intent phrase each prompt sentence is on the agent side:
# the IVR says exactly these, often.
PROMPT_WEIGHT = 10
_REGISTRATION_WAIT_S = 10.0  # at stop, for recordings closed just before
# A recording nobody has written for this long, and never registered, was cut off by a crash.
ORPHAN_QUIET_S = 600.0


def transcriber_settings(config: Config, flow: Flow | None) -> TranscriberSettings:
    """The recognizer and language of transcription for this config and flow."""
    section = config.recordings
    backend = section.backend or config.asr.backend
    same = backend == config.asr.backend
    model_path = section.model_path or (config.asr.model_path if same else None)
    caller: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()
    if flow is not None:
        caller = tuple(flow.matcher.phrases()) + tuple(flow.operator.phrases)
        agent = tuple(flow.prompt_texts()) * PROMPT_WEIGHT + caller
    return TranscriberSettings(
        backend=backend, model_path=model_path, caller_phrases=caller, agent_phrases=agent
    )


class RecordingsService:
    """Registration, transcription and retention of one server's recordings."""

    def __init__(
        self,
        config: Config,
        records: CallRecords,
        recordings_written: Callable[[], Awaitable[None]],
    ) -> None:
        """Configure; nothing runs until ``start``.

        Args:
            config: the whole configuration (``recordings``, ``asr``).
            records: the call records (their store, their chains of writes).
            recordings_written: ``MediaEngine.recordings_written``.
        """
        self.config = config
        self.records = records
        self.root = recordings_dir(config)
        self.node = node_name(config)
        self._written = recordings_written
        section = config.recordings
        self.options = RecordingOptions(
            self.root, self.node, section.transcribe, section.max_attempts
        )
        self.pool: TranscriptionPool | None = None
        self.runner: TranscriptionRunner | None = None
        self.retention = RetentionSweep(
            records.store, self.root, section.retention_days, interval_s=section.sweep_interval_s
        )
        self._starting: asyncio.Task[None] | None = None
        self._adopting: asyncio.Task[None] | None = None
        self._registering: set[asyncio.Task[None]] = set()
        self.orphan_quiet_s = ORPHAN_QUIET_S

    async def start(self, flow: Flow | None) -> None:
        """Check the recognizer's model, start retention, and start transcription in the background.

        Raises:
            ConfigError: vosk is asked for and has no model.
        """
        settings = transcriber_settings(self.config, flow)
        if self.config.recordings.transcribe and settings.backend == "vosk":
            where = "recordings" if self.config.recordings.model_path else "asr"
            try:
                await asyncio.to_thread(find_vosk_model, settings.model_path)
            except ModelNotFoundError as exc:
                raise ConfigError("configuration", None, f"{where}.model_path", str(exc)) from None
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        self.retention.start()
        self._adopting = asyncio.get_running_loop().create_task(
            self._adopt_orphans(), name="recordings-adopt"
        )
        if not self.config.recordings.transcribe:
            return
        self.pool = TranscriptionPool(settings, self.config.recordings.workers)
        self._starting = asyncio.get_running_loop().create_task(
            self._start_transcription(self.pool), name="transcription-start"
        )

    async def _start_transcription(self, pool: TranscriptionPool) -> None:
        section = self.config.recordings
        try:
            await pool.start()
        except TranscriptionError as exc:
            log.error("transcription is off: %s (recordings stay queued)", exc)
            return
        self.runner = TranscriptionRunner(
            self.records.store,
            pool.transcribe,
            self.root,
            RunnerSettings(node=self.node, workers=section.workers, lease_s=section.lease_s),
        )
        await self.runner.start()
        log.info(
            "transcription: %s x%d as node %r, recordings in %s",
            pool.settings.backend, section.workers, self.node, self.root,
        )  # fmt: skip

    async def _adopt_orphans(self) -> None:
        await asyncio.sleep(self.orphan_quiet_s)
        try:
            adopted = await adopt_orphans(
                self.records.store, self.root, node=self.node, quiet_s=self.orphan_quiet_s,
                transcribe=self.options.transcribe, max_attempts=self.options.max_attempts,
            )  # fmt: skip
        except StoreError as exc:
            log.error("recordings left by a crash: %s", exc)
            return
        if adopted and self.runner is not None:
            self.runner.wake()

    def call_ended(self, call_id: str, file: Path, started_at: float) -> None:
        """A recorded call ended: register its file once the media core has closed it."""
        task = asyncio.get_running_loop().create_task(self._register(call_id, file, started_at))
        self._registering.add(task)
        task.add_done_callback(self._registering.discard)

    async def _register(self, call_id: str, file: Path, started_at: float) -> None:
        for attempt in range(3):
            try:
                await self._written()
                break
            except (
                RuntimeError
            ) as exc:  # the media engine is stopping: its writer is being replaced
                if attempt == 2:
                    call_log("hotline.recordings", call_id).error("recording not flushed: %s", exc)
                    return
                await asyncio.sleep(0.2)
        self.records.recording_closed(call_id, file, started_at, self.options, self._queued)

    def _queued(self, _recording: Any) -> None:
        if self.runner is not None:
            self.runner.wake()

    def status(self) -> dict[str, Any]:
        """What ``/health`` says of transcription and retention."""
        runner, pool = self.runner, self.pool
        return {
            "node": self.node,
            "transcription": "off" if pool is None else ("running" if runner else "starting"),
            "workers_busy": len(pool.busy_pids) if pool is not None else 0,
            "completed": runner.completed if runner is not None else 0,
            "failed_attempts": runner.failed if runner is not None else 0,
            "deleted_by_retention": self.retention.deleted,
        }

    async def stop(self) -> None:
        """Stop transcription and retention; wait for registrations on their way."""
        for task in (self._starting, self._adopting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.runner is not None:
            await self.runner.stop()
        if self.pool is not None:
            await self.pool.close()
        await self.retention.stop()
        if self._registering:
            await asyncio.wait(list(self._registering), timeout=_REGISTRATION_WAIT_S)

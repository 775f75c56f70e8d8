"""Post-call transcription over real calls: searchable at the right time, and never twice.

- ``hotline call --say "insurance question"`` (our UAC, hibari TTS over PCMU)
  to a real ``hotline serve`` with the speech IVR. After the hang-up the
  recording is registered, transcribed by a worker process, and a store search
  for the words finds the call with ``offset_ms`` within 500 ms of where the
  caller's speech starts in the recording's left channel, found here by its
  energy (not by any recognizer).
- A long call (``--stay``) makes a transcription job of a few seconds. While it
  runs (the store says so) the server is SIGKILLed; its worker dies with it.
  After a restart on the same data the job is released and finishes, and the
  stored transcript is exactly the recording's transcript, each segment once:
  the same as a fresh transcription of the file computed here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conversations import SearchQuery, Store, open_store
from hotline.config import load_config
from hotline.recordings_service import transcriber_settings
from tests.integration.helpers import HotlineProcess, hotline_command

pytestmark = pytest.mark.timeout(600)

SAID = "insurance question"  # hibari says it, and pocketsphinx hears it, word for word
FRAME = 80  # 10 ms at 8 kHz
NODE = "it-node"
CONFIG = f"recordings:\n  node: {NODE}\n"


def call(server: HotlineProcess, *args: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """``hotline call`` against the server; its JSON result."""
    command = [
        *hotline_command(), "call", f"sip:hotline@127.0.0.1:{server.sip_port}",
        "--api", f"http://127.0.0.1:{server.http_port}", "--timeout", "60", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    assert "call_id" in result, result
    return result


def store_of(server: HotlineProcess) -> Store:
    return open_store(f"sqlite:///{server.workdir / 'data' / 'hotline.db'}")


async def job_of(store: Store, call_id: str, statuses: tuple[str, ...], timeout_s: float) -> Any:
    """The call's transcription job once it is in one of ``statuses`` (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        conversation = await store.conversation_for_call(call_id)
        recordings = await store.recordings_of(conversation.id) if conversation else []
        if recordings:
            job = await store.transcription_job(recordings[0].id)
            if job is not None and job.status in statuses:
                return recordings[0], job
        await asyncio.sleep(0.05)
    raise AssertionError(f"no transcription job of {call_id} became {statuses} in {timeout_s} s")


def caller_onset_ms(path: Path) -> float:
    """Where the caller's channel first gets loud (-40 dBFS over 10 ms)."""
    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (2, 8000)
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").reshape(-1, 2)
    left = pcm[: len(pcm) // FRAME * FRAME, 0].astype(np.float64).reshape(-1, FRAME)
    level_db = 10 * np.log10(np.mean(left**2, axis=1) / 32768**2 + 1e-12)
    return float(np.flatnonzero(level_db > -40.0)[0]) * 10.0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[HotlineProcess]]:
    """Servers the test starts; stopped (SIGKILL at worst) afterwards, their logs shown."""
    started: list[HotlineProcess] = []
    yield started
    for server in started:
        server.stop(timeout_s=10)
        print(f"--- {server.log_path} (tail) ---\n{server.log_text()[-4000:]}")


def start(servers: list[HotlineProcess], workdir: Path) -> HotlineProcess:
    server = HotlineProcess(workdir, ivr=True, config_yaml=CONFIG)
    servers.append(server)
    return server.start(ready_timeout_s=120.0)


def test_a_said_phrase_is_found_by_search_where_it_is_in_the_recording(
    servers: list[HotlineProcess], tmp_path: Path
):
    server = start(servers, tmp_path / "hotline")
    result = call(server, "--say", SAID)
    call_id = result["call_id"]

    async def check() -> None:
        async with store_of(server) as store:
            recording, job = await job_of(store, call_id, ("done", "failed"), timeout_s=120)
            assert job.status == "done", job
            page = await store.search(SearchQuery(f'"{SAID}"'))
            # The IVR's dialogue (what its live recognizer heard) is a message hit of its own.
            hits = [h for h in page.hits if h.kind == "transcript"]
            assert hits, (SAID, [s.text for s in await store.transcript(recording.conversation_id)])
            (hit,) = hits
            assert (hit.recording_id, hit.speaker) == (recording.id, "customer")
            onset_ms = caller_onset_ms(server.workdir / "data" / "recordings" / recording.path)
            print(f"match at {hit.offset_ms} ms, caller's speech from {onset_ms:.0f} ms")
            assert abs(hit.offset_ms - onset_ms) <= 500, (hit.offset_ms, onset_ms)
            matched = " ".join(text for text, is_match in hit.snippet if is_match).lower()
            assert "insurance" in matched and "question" in matched

    asyncio.run(check())


def test_a_job_killed_with_the_server_finishes_after_restart_and_is_stored_once(
    servers: list[HotlineProcess], tmp_path: Path
):
    workdir = tmp_path / "hotline"
    server = start(servers, workdir)
    # 40 s on the line: the IVR, then hold music and a queue announcement.
    call_id = call(server, "--say", SAID, "--stay", "40")["call_id"]

    async def kill_while_running() -> None:
        async with store_of(server) as store:
            _, job = await job_of(store, call_id, ("running", "done"), timeout_s=60)
            assert job.status == "running", "the job finished before the kill: make the call longer"
            assert job.worker == NODE
            server.kill()  # SIGKILL: no stop, no release

    asyncio.run(kill_while_running())
    restarted = start(servers, workdir)  # same data, same node name, new ports

    async def check() -> None:
        async with store_of(restarted) as store:
            recording, job = await job_of(store, call_id, ("done", "failed"), timeout_s=180)
            assert job.status == "done" and job.attempts == 2, job
            stored = await store.transcript(recording.conversation_id, unredacted=True)
        assert restarted.log_text().count(f"[{call_id}] transcription: job {job.id} done") == 1
        # What the file says, transcribed here the same way the workers do.
        from recordings.transcribe import Transcriber

        flow_settings = transcriber_settings(load_config(), _demo_flow())
        expected = Transcriber(flow_settings).transcribe_file(
            workdir / "data" / "recordings" / recording.path
        )
        rows = [(s.channel, s.speaker, s.start_ms, s.end_ms, s.text) for s in stored]
        assert len(rows) == len(set(rows)), "a segment was stored twice"
        assert rows == [
            (s.channel, s.speaker, s.start_ms, s.end_ms, " ".join(w.text for w in s.words))
            for s in expected.segments
        ]

    asyncio.run(check())


def _demo_flow() -> Any:
    from hotline.server import DEMO_FLOW
    from ivr.flow import Flow

    return Flow.from_file(DEMO_FLOW)

"""hotline.recordings_service: which recognizer transcribes, and a call's file into the queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from conversations import open_store
from hotline.call_records import CallRecords
from hotline.config import ConfigError, load_config
from hotline.recordings_service import PROMPT_WEIGHT, RecordingsService, transcriber_settings
from ivr.flow import Flow
from media_core.recording import WavRecorder

DEMO_FLOW = Path(__file__).resolve().parents[3] / "ivr" / "flows" / "hospital.yaml"


def test_transcription_uses_the_asr_recognizer_unless_the_recordings_section_names_one():
    config = load_config()
    settings = transcriber_settings(config, None)
    assert (settings.backend, settings.model_path, settings.caller_phrases) == (
        "pocketsphinx", None, (),
    )  # fmt: skip
    config.asr.backend, config.asr.model_path = "vosk", "/srv/small-model"
    assert transcriber_settings(config, None).model_path == "/srv/small-model"
    config.recordings.model_path = "/srv/big-model"
    assert transcriber_settings(config, None).model_path == "/srv/big-model"
    config.recordings.model_path = None
    config.recordings.backend = "pocketsphinx"  # the IVR's vosk model is not pocketsphinx's
    assert transcriber_settings(config, None).model_path is None


def test_the_flow_gives_the_caller_its_phrases_and_the_agent_side_its_prompts_too():
    flow = Flow.from_file(DEMO_FLOW)
    settings = transcriber_settings(load_config(), flow)
    assert "i need a refill" in {p.lower() for p in settings.caller_phrases}
    greeting = flow.prompt_texts()[0]
    assert greeting not in settings.caller_phrases
    assert settings.agent_phrases.count(greeting) == PROMPT_WEIGHT
    assert set(settings.caller_phrases) <= set(settings.agent_phrases)


async def test_vosk_without_a_model_stops_the_start_with_the_field_named(tmp_path: Path):
    config = load_config()
    config.data_dir = str(tmp_path)
    config.recordings.backend = "vosk"
    config.recordings.model_path = str(tmp_path / "no-model")
    async with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        service = RecordingsService(config, CallRecords(store, None), _written)
        with pytest.raises(ConfigError) as caught:
            await service.start(None)
        assert caught.value.field_path == "recordings.model_path"
        await service.stop()


async def test_a_recorded_call_is_registered_once_its_file_is_written(tmp_path: Path):
    config = load_config()
    config.data_dir = str(tmp_path)
    config.recordings.transcribe = False  # no workers here: only the registration
    config.recordings.node = "node-a"
    file = tmp_path / "recordings" / "2027-01-15" / "c1@host.wav"
    written = asyncio.Event()

    async def recordings_written() -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        with WavRecorder(file) as recorder:  # the media core closes it meanwhile
            recorder.write(np.zeros(8000, np.int16), None)
        written.set()

    async with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        records = CallRecords(store, None)
        service = RecordingsService(config, records, recordings_written)
        await service.start(None)
        assert service.status()["transcription"] == "off"
        records.call_started("c1@host", "<sip:+15551230001@host>;tag=1", None)
        service.call_ended("c1@host", file, 1_800_000_000.0)
        await service.stop()  # waits for the registration on its way
        await records.close()
        assert written.is_set()
        conversation = await store.conversation_for_call("c1@host")
        (recording,) = await store.recordings_of(conversation.id)
        assert (recording.path, recording.duration_s, recording.node) == (
            "2027-01-15/c1@host.wav", 1.0, "node-a",
        )  # fmt: skip
        assert await store.transcription_job(recording.id) is None  # transcribe: false


async def _written() -> None:
    return None

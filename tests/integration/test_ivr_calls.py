"""The speech IVR over real SIP calls with telephone audio (8 kHz G.711).

- Callers (``hotline call``'s own UAC) say the dev corpus in two TTS voices and
  are routed to the expected queue.
- Barge-in: the server stops its prompt soon after the caller starts talking;
  a prompt nobody talks over, or that only hears a short noise, plays to its end.
- Keys and the operator escape from pjsua2 (RFC 4733): 0 reaches the operator at
  once; silence twice leads to the keypad menu, where 2 is the pharmacy.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hotline.caller import Step, place_call, steps_from_args
from hotline.server import recording_name
from tests.corpus import load_corpus, read_wav_8k
from tests.integration.helpers import HotlineProcess, run_pjsua_caller

pytestmark = pytest.mark.timeout(900)

# Issue 4's goal. Measured over these calls: 103/106 (97.2%) once each utterance
# was normalised by its own cepstral mean (asr.engine_pocketsphinx), 88.7% before.
ROUTED_AT_LEAST = 0.95
CONCURRENT_CALLS = 8
FRAME = 160  # 20 ms at 8 kHz


def target(server: HotlineProcess) -> str:
    return f"sip:hotline@127.0.0.1:{server.sip_port}"


def api(server: HotlineProcess) -> str:
    return f"http://127.0.0.1:{server.http_port}"


def outcomes(server: HotlineProcess) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in sorted((server.workdir / "data" / "ivr").glob("outcomes-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line]
    return lines


def recording(server: HotlineProcess, call_id: str) -> np.ndarray:
    """The server's recording of a call: column 0 what the caller sent, 1 what it was sent."""
    (path,) = (server.workdir / "data" / "recordings").glob(f"*/{recording_name(call_id)}.wav")
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.reshape(-1, 2)


def loud_frames(channel: np.ndarray, threshold_dbfs: float = -40.0) -> np.ndarray:
    frames = channel[: len(channel) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
    return level > threshold_dbfs


@pytest.fixture(scope="module")
def ivr_server(tmp_path_factory: pytest.TempPathFactory):
    server = HotlineProcess(tmp_path_factory.mktemp("ivr"), ivr=True, rtp_range_size=400)
    server.start(ready_timeout_s=90.0)
    yield server
    server.stop(timeout_s=10)
    print(f"--- {server.log_path} (tail) ---\n{server.log_text()[-4000:]}")


# ------------------------------------------------------------------ routing


def test_the_dev_corpus_in_two_voices_routes_to_the_expected_queue(ivr_server: HotlineProcess):
    items = [item for item in load_corpus() if item.voice in ("hibari-heart", "flite-rms")]
    assert len({item.voice for item in items}) == 2, "both voices' fixtures are committed"
    # The caller answers "yes", in its own voice, should the IVR read back a guess.
    yes = {
        voice: steps_from_args(["yes"], [], None, engine)[0]
        for voice, engine in (("hibari-heart", "hibari"), ("flite-rms", "flite"))
    }

    async def one(item: Any, gate: asyncio.Semaphore) -> dict[str, Any]:
        async with gate:
            steps = [Step(audio=read_wav_8k(item.path), label=item.text), yes[item.voice]]
            result = await place_call(
                target(ivr_server), steps, api_url=api(ivr_server), timeout_s=90.0
            )
            return result | {"expected": item.intent, "voice": item.voice, "said": item.text}

    async def run_all() -> list[dict[str, Any]]:
        gate = asyncio.Semaphore(CONCURRENT_CALLS)
        return await asyncio.gather(*(one(item, gate) for item in items))

    results = asyncio.run(run_all())
    wrong = [r for r in results if r.get("queue") != r["expected"]]
    for r in wrong:
        print(f"{r['voice']}: {r['said']!r} -> {r.get('transcript')} {r.get('intent')} "
              f"(want {r['expected']})")
    routed = 1 - len(wrong) / len(results)
    print(f"routed {len(results) - len(wrong)}/{len(results)} = {routed:.1%}")
    assert routed >= ROUTED_AT_LEAST
    decided = [r for r in results if r.get("decision_latency_ms") is not None]
    assert decided and all(r["decision_latency_ms"] >= 0 for r in decided)
    # Every call's outcome was stored with the call.
    stored = {o["call_id"] for o in outcomes(ivr_server)}
    assert {r["call_id"] for r in results} <= stored


# ------------------------------------------------------------------ barge-in


def test_barge_in_caller_speech_stops_the_prompt_within_200_ms(ivr_server: HotlineProcess):
    said = read_wav_8k(next(i.path for i in load_corpus() if i.voice == "hibari-heart"))
    speech = np.concatenate([np.zeros(12000, np.int16), said])  # 1.5 s into the greeting

    async def call() -> dict[str, Any]:
        steps = [Step(audio=speech, label="talks over the greeting")]
        return await place_call(
            target(ivr_server), steps, api_url=None, barge_in=True, timeout_s=8.0, stay_s=4.0
        )

    result = asyncio.run(call())
    ivr_server.wait_log(f"[{result['call_id']}] ended", timeout_s=5.0)
    pcm = recording(ivr_server, result["call_id"])
    caller_loud, prompt_loud = loud_frames(pcm[:, 0]), loud_frames(pcm[:, 1])
    onset = int(np.flatnonzero(caller_loud)[0])
    assert prompt_loud[:onset].any(), "the greeting was playing when the caller spoke"
    # The prompt stops: its last loud frame within 200 ms of the caller's first.
    after = prompt_loud[onset : onset + 50]
    quiet_from = next(i for i in range(len(after)) if not after[i:].any())
    assert quiet_from * 20 <= 200, f"the prompt went on {quiet_from * 20} ms"


@pytest.mark.parametrize("noise_ms", [0, 60])
def test_a_prompt_without_caller_speech_is_never_cut(ivr_server: HotlineProcess, noise_ms: int):
    rng = np.random.default_rng(1)
    steps = []
    if noise_ms:  # a cough-length burst of noise at -20 dBFS, shorter than barge-in's minimum
        burst = (rng.standard_normal(noise_ms * 8) * 3000).astype(np.int16)
        steps = [Step(audio=np.concatenate([np.zeros(4000, np.int16), burst]), label="noise")]

    async def call() -> dict[str, Any]:
        return await place_call(
            target(ivr_server), steps, api_url=None, barge_in=True, timeout_s=12.0, stay_s=10.0
        )

    result = asyncio.run(call())
    ivr_server.wait_log(f"[{result['call_id']}] ended", timeout_s=5.0)
    pcm = recording(ivr_server, result["call_id"])
    prompt_loud = loud_frames(pcm[:, 1])
    first = int(np.flatnonzero(prompt_loud)[0])
    # The greeting is about 7 s with short pauses: no silence of a second or more
    # before it ends, as there would be had it been cut.
    gaps = np.flatnonzero(np.diff(np.flatnonzero(prompt_loud[first:])) > 50)
    assert len(gaps) == 0 or np.flatnonzero(prompt_loud[first:])[gaps[0]] * 0.02 > 5.0
    assert np.flatnonzero(prompt_loud)[-1] * 0.02 - first * 0.02 > 5.0


# ------------------------------------------------------------------ keys


def test_key_0_from_pjsua2_reaches_the_operator(ivr_server: HotlineProcess, tmp_path: Path):
    run_pjsua_caller(
        ivr_server.sip_port, tmp_path, "--dtmf", "0", "--dtmf-after-s", "2.0", "--hold-s", "5"
    )
    last = outcomes(ivr_server)[-1]
    assert (last["queue"], last["method"]) == ("operator", "operator")
    assert last["digits"] == ["0"]


def test_silence_twice_leads_to_the_keypad_where_2_is_the_pharmacy(
    ivr_server: HotlineProcess, tmp_path: Path
):
    # Greeting, 6 s of silence, the reprompt, 6 s more: then the menu plays.
    run_pjsua_caller(
        ivr_server.sip_port,
        tmp_path,
        "--dtmf", "2", "--dtmf-after-s", "32", "--hold-s", "36",
        timeout_s=60.0,
    )
    last = outcomes(ivr_server)[-1]
    assert (last["queue"], last["method"]) == ("pharmacy", "dtmf")
    kinds = [event[1] for event in last["events"]]
    assert kinds.count("no_input") >= 2, kinds

